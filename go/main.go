// cpbench-go: the Go reference implementation of cpbench's patterns.
//
// cpbench starts it as a child process (`cpbench-go serve`) for --impl=go
// and talks to it over stdin/stdout in a line protocol (docs/go.md): one
// "run" request per repetition, answered with the repetition's ops, times,
// resources, histograms, metrics and failed invariants. cpbench writes every
// row itself, so each column means the same for Go as for the C backends.
//
// Each pattern is one file p_<name>.go holding the Go twin of
// workloads/<name>.c: the same shape, knobs, parameters, invariants and
// metrics, written in idiomatic Go (goroutines, channels, select, context,
// sync, golang.org/x/sync, golang.org/x/time/rate).
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

const protocolVersion = 1

// Pattern is one Go twin, registered from its file's init.
type Pattern struct {
	Name     string
	Params   []string // the C pattern's --set keys this twin honours (others: refused unless default)
	Variants []string // --variant names it has; nil: "default" only
	Metrics  []string // names of the C pattern's metrics it reports
	OpenLoop bool     // honours Cfg.Rate (Pace and HistU)
	Payloads []int64  // the --payload values it can run (Payload); nil: any
	Run      func(r *Run) error
}

var patterns = map[string]*Pattern{}

func register(p *Pattern) {
	if _, dup := patterns[p.Name]; dup {
		panic("cpbench-go: pattern registered twice: " + p.Name)
	}
	if p.Variants == nil {
		p.Variants = []string{"default"}
	}
	patterns[p.Name] = p
}

func main() {
	if len(os.Args) != 2 || os.Args[1] != "serve" {
		fmt.Fprintln(os.Stderr, "usage: cpbench-go serve   (started by cpbench --impl=go; protocol in docs/go.md)")
		os.Exit(2)
	}
	// An interrupted cpbench stops the current run with SIGUSR1 and
	// discards it; the terminal's SIGINT/SIGHUP are cpbench's to handle.
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGPIPE)
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() {
		for range usr1 {
			atomic.StoreInt32(&stopAll, 1)
		}
	}()
	calibrate()
	in := bufio.NewReaderSize(os.Stdin, 1<<16)
	out := bufio.NewWriterSize(os.Stdout, 1<<16)
	for {
		line, err := in.ReadString('\n')
		if err != nil {
			return // cpbench closed the pipe (or died)
		}
		line = strings.TrimSpace(line)
		switch {
		case line == "hello":
			hello(out)
		case strings.HasPrefix(line, "run "):
			if err := serveRun(out, line[4:]); err != nil {
				fmt.Fprintf(out, "error %s\n", err)
			}
		case line == "quit":
			return
		default:
			fmt.Fprintf(out, "error unknown request %q\n", line)
		}
		fmt.Fprintln(out, "end")
		out.Flush()
	}
}

func hello(out *bufio.Writer) {
	race := 0
	if raceEnabled {
		race = 1
	}
	fmt.Fprintf(out, "cpgo %d go_version=%s gomaxprocs=%d race=%d\n", protocolVersion, runtime.Version(),
		runtime.GOMAXPROCS(0), race)
	names := make([]string, 0, len(patterns))
	for n := range patterns {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		p := patterns[n]
		ol := 0
		if p.OpenLoop {
			ol = 1
		}
		pl := make([]string, len(p.Payloads))
		for i, v := range p.Payloads {
			pl[i] = strconv.FormatInt(v, 10)
		}
		fmt.Fprintf(out, "pattern %s open_loop=%d params=%s variants=%s metrics=%s payloads=%s\n", n, ol,
			strings.Join(p.Params, ","), strings.Join(p.Variants, ","), strings.Join(p.Metrics, ","),
			strings.Join(pl, ","))
	}
}

// parseRun reads "pattern=chan variant=default threads=-1 ... set.K=V".
func parseRun(req string) (*Pattern, *Cfg, error) {
	c := &Cfg{Set: map[string]int64{}}
	var p *Pattern
	for _, kv := range strings.Fields(req) {
		eq := strings.IndexByte(kv, '=')
		if eq < 0 {
			return nil, nil, fmt.Errorf("bad field %q", kv)
		}
		k, v := kv[:eq], kv[eq+1:]
		var ip *int64
		var fp *float64
		switch k {
		case "pattern":
			if p = patterns[v]; p == nil {
				return nil, nil, fmt.Errorf("no Go version of pattern %q", v)
			}
			continue
		case "variant":
			c.Variant = v
			continue
		case "seed":
			u, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("bad seed %q", v)
			}
			c.Seed = u
			continue
		case "threads":
			ip = &c.Threads
		case "producers":
			ip = &c.Producers
		case "consumers":
			ip = &c.Consumers
		case "capacity":
			ip = &c.Capacity
		case "payload":
			ip = &c.Payload
		case "work_ns":
			ip = &c.WorkNs
		case "items":
			ip = &c.Items
		case "lat_sample":
			ip = &c.LatSample
		case "duration":
			fp = &c.Duration
		case "rate":
			fp = &c.Rate
		case "timeout":
			fp = &c.Timeout
		default:
			if !strings.HasPrefix(k, "set.") {
				return nil, nil, fmt.Errorf("unknown field %q", k)
			}
		}
		if fp != nil {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				return nil, nil, fmt.Errorf("bad %s %q", k, v)
			}
			*fp = f
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("bad %s %q", k, v)
		}
		if ip != nil {
			*ip = n
		} else {
			c.Set[k[4:]] = n
		}
	}
	if p == nil {
		return nil, nil, fmt.Errorf("no pattern in the request")
	}
	found := false
	for _, v := range p.Variants {
		found = found || v == c.Variant
	}
	if !found {
		return nil, nil, fmt.Errorf("pattern %s has no Go variant %q", p.Name, c.Variant)
	}
	for _, k := range p.Params {
		if _, ok := c.Set[k]; !ok {
			return nil, nil, fmt.Errorf("parameter %s missing from the request", k)
		}
	}
	return p, c, nil
}

func serveRun(out *bufio.Writer, req string) error {
	p, c, err := parseRun(req)
	if err != nil {
		return err
	}
	var ms0, ms1 runtime.MemStats
	runtime.ReadMemStats(&ms0)
	g0 := runtime.NumGoroutine()
	r := newRun(c)
	ru0 := rusage()
	rerr := p.Run(r)
	ru1 := rusage()
	if rerr != nil {
		r.Fail("the run could not start: %v", rerr)
	}
	// Leak check: every goroutine of the run has ended (runtime.NumGoroutine
	// back to what it was). A goroutine that has returned may take a moment
	// to be gone from the count: allow a second.
	for deadline := time.Now().Add(time.Second); runtime.NumGoroutine() > g0 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > g0 {
		r.Fail("goroutine leak: %d goroutines still running 1 s after the run (%d before it)", g-g0, g0)
	}
	runtime.ReadMemStats(&ms1)
	if atomic.LoadInt32(&stopAll) != 0 {
		fmt.Fprintln(out, "interrupted")
		return nil
	}
	fmt.Fprintf(out, "result ops=%d t_start=%d t_end=%d nthr=%d utime_us=%d stime_us=%d nvcsw=%d nivcsw=%d "+
		"maxrss_kb=%d allocs=%d alloc_bytes=%d\n", r.Ops, r.TStart, r.TEnd, len(r.thr),
		tvUs(ru1.Utime)-tvUs(ru0.Utime), tvUs(ru1.Stime)-tvUs(ru0.Stime), ru1.Nvcsw-ru0.Nvcsw,
		ru1.Nivcsw-ru0.Nivcsw, ru1.Maxrss, ms1.Mallocs-ms0.Mallocs, ms1.TotalAlloc-ms0.TotalAlloc)
	if r.fairMax > 0 {
		fmt.Fprintf(out, "fair %d %d\n", r.fairMin, r.fairMax)
	}
	for _, name := range r.metricOrder {
		fmt.Fprintf(out, "metric %s %s\n", name, strconv.FormatFloat(r.metrics[name], 'g', -1, 64))
	}
	var h, hu Hist
	for _, t := range r.thr {
		h.merge(t.Hist)
		if t.HistU != nil {
			hu.merge(t.HistU)
		}
	}
	writeHist(out, "hist", &h)
	if c.Rate > 0 {
		writeHist(out, "hist_u", &hu)
	}
	if r.nfail > 0 {
		fmt.Fprintf(out, "fail %d %s\n", r.nfail, strings.ReplaceAll(r.fail, "\n", " "))
	}
	return nil
}

// writeHist sends a histogram as "value:count" pairs that cpbench records
// with cp_hist_record_n: the lowest value of each slot (the same slot in C's
// layout), except that the slots of the minimum and maximum are sent as the
// exact min and max, and clamped values as highest+1, so that count, min,
// max, clamped and every slot come out identical.
func writeHist(out *bufio.Writer, tag string, h *Hist) {
	fmt.Fprintf(out, "%s %d", tag, h.total)
	if h.total > 0 {
		minSlot, maxSlot := slotOf(h.min), slotOf(h.max)
		for i, n := range h.counts {
			if n == 0 {
				continue
			}
			v := slotValue(i)
			if i == maxSlot && h.clamped > 0 {
				fmt.Fprintf(out, " %d:%d", uint64(histHighest)+1, h.clamped)
				if n -= h.clamped; n == 0 {
					continue
				}
			}
			switch {
			case i == minSlot && i == maxSlot && n > 1:
				fmt.Fprintf(out, " %d:%d", h.max, 1)
				n--
				v = h.min
			case i == minSlot:
				v = h.min
			case i == maxSlot:
				v = h.max
			}
			fmt.Fprintf(out, " %d:%d", v, n)
		}
	}
	fmt.Fprintln(out)
}

func rusage() syscall.Rusage {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return ru
}

func tvUs(t syscall.Timeval) int64 { return int64(t.Sec)*1000000 + int64(t.Usec) }
