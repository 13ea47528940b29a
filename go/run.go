package main

// The Go side of cpbench's workload contract (runtime/workload.h): a
// pattern's Run spawns its goroutines with Spawn (they wait at a start gate),
// opens the gate with Start (and WaitDuration), waits for them with Join,
// checks its invariants (Fail on any violation) and sets r.Ops. Latency is
// recorded by each goroutine into its own histogram (t.Hist).
//
// Everything here mirrors the C helper of the same name, so that a Go twin
// reads like its C original: Spawn = wl_spawn, More = wl_more, Pace =
// wl_pace, Mix = wl_mix, Work = wl_work, Now = wl_now.

import (
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe" // go:linkname, Payload
)

// Cfg is one run's configuration, as cpbench sent it (the C wl_cfg).
// A knob the pattern does not use is -1 (WL_UNUSED).
type Cfg struct {
	Threads, Producers, Consumers, Capacity, Payload, WorkNs, Items int64
	Duration                                                        float64 // seconds; 0: run until Items are done
	Seed                                                            uint64
	LatSample                                                       int64   // timestamp 1 op in LatSample; 0: none
	Rate                                                            float64 // open loop: ops/s over all the pattern's sources; 0: closed loop
	Variant                                                         string
	Set                                                             map[string]int64 // the pattern's --set parameters, every one of its Params
	Timeout                                                         float64          // --timeout, seconds (for a pattern's own bounded waits)
}

// Param returns a --set parameter (the pattern must declare it in Params).
func (c *Cfg) Param(key string) int64 {
	v, ok := c.Set[key]
	if !ok {
		panic("cpbench-go: undeclared parameter " + key)
	}
	return v
}

type Thread struct {
	Hist  *Hist // this goroutine's latency histogram
	HistU *Hist // open loop: from the actual start (uncorrected); nil otherwise
	Ops   uint64
	Name  string
	Index int
	Run   *Run
	ended uint64
	phase atomic.Value // string: what it is doing, for the watchdog dump
}

func (t *Thread) Phase(p string) { t.phase.Store(p) }

type Run struct {
	Cfg              *Cfg
	mu               sync.Mutex
	thr              []*Thread
	gate             chan struct{}
	started          bool
	stop             int32
	wg               sync.WaitGroup
	TStart, TEnd     uint64
	Ops              uint64
	fail             string
	nfail            int
	metrics          map[string]float64
	metricOrder      []string
	faulted          int32
	fairMin, fairMax uint64
}

// Fair reports a lock pattern\'s fairness: the fewest and most ops of one
// goroutine (the CSV\'s fair_min_ops, fair_max_ops).
func (r *Run) Fair(min, max uint64) { r.fairMin, r.fairMax = min, max }

// Fault is the Go side's negative control: true once per run when the
// environment variable CPBENCH_GO_FAULT names it (tests/cli/test_go.sh makes
// the chan twin lose an item this way and expects cpbench to catch it).
var faultName = os.Getenv("CPBENCH_GO_FAULT")

func (r *Run) Fault(name string) bool {
	return faultName == name && atomic.CompareAndSwapInt32(&r.faulted, 0, 1)
}

var stopAll int32 // set by SIGUSR1: cpbench was interrupted

func newRun(c *Cfg) *Run {
	r := &Run{Cfg: c, gate: make(chan struct{}), metrics: map[string]float64{}}
	if atomic.LoadInt32(&stopAll) != 0 {
		r.stop = 1
	}
	return r
}

// Spawn starts a goroutine that waits at the start gate, then runs fn.
// It may be called after Start (a supervisor's replacement, a pool growing).
func (r *Run) Spawn(name string, fn func(t *Thread)) *Thread {
	r.mu.Lock()
	t := &Thread{Name: name, Index: len(r.thr), Run: r, Hist: histFor(len(r.thr), 0)}
	if r.Cfg.Rate > 0 {
		t.HistU = histFor(len(r.thr), 1)
	}
	t.phase.Store("created")
	r.thr = append(r.thr, t)
	r.wg.Add(1)
	r.mu.Unlock()
	go func() {
		defer r.wg.Done()
		<-r.gate
		fn(t)
		t.ended = Now()
	}()
	return t
}

// Start stamps TStart and opens the gate.
func (r *Run) Start() {
	r.TStart = Now()
	r.started = true
	close(r.gate)
}

// WaitDuration: a time-based run sleeps until TStart + Duration, then sets
// stop; a count-based one returns at once.
func (r *Run) WaitDuration() {
	if r.Cfg.Duration <= 0 {
		return
	}
	until := r.TStart + uint64(r.Cfg.Duration*1e9)
	for {
		now := Now()
		if now >= until || r.Stopped() {
			break
		}
		d := until - now
		if d > 10e6 {
			d = 10e6
		}
		time.Sleep(time.Duration(d))
	}
	atomic.StoreInt32(&r.stop, 1)
}

// Join waits for every goroutine; TEnd = the last one's end.
func (r *Run) Join() {
	r.wg.Wait()
	end := r.TStart
	r.mu.Lock()
	for _, t := range r.thr {
		if t.ended > end {
			end = t.ended
		}
	}
	r.mu.Unlock()
	r.TEnd = end
}

func (r *Run) Threads() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.thr)
}

// Fail records a failed invariant (the first message is kept).
func (r *Run) Fail(format string, a ...interface{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.nfail == 0 {
		r.fail = fmt.Sprintf(format, a...)
	}
	r.nfail++
}

// Metric reports one of the pattern's own figures (declared in Metrics).
func (r *Run) Metric(name string, v float64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.metrics[name]; !ok {
		r.metricOrder = append(r.metricOrder, name)
	}
	r.metrics[name] = v
}

func (r *Run) Stopped() bool {
	return atomic.LoadInt32(&r.stop) != 0 || atomic.LoadInt32(&stopAll) != 0
}

// More: count-based, n items; time-based, until stopped.
func (r *Run) More(done, n uint64) bool {
	if r.Stopped() {
		return false
	}
	return r.Cfg.Duration > 0 || done < n
}

// Pace (open loop): waits until the intended start of a source's k-th op,
// TStart + phase + k*interval, and returns it; 0 if stopped while waiting.
func (r *Run) Pace(k, intervalNs, phaseNs uint64) uint64 {
	t := r.TStart + phaseNs + k*intervalNs
	for {
		now := Now()
		if now >= t {
			return t
		}
		if r.Stopped() {
			return 0
		}
		if t-now > 100000 {
			nap := t - now - 50000
			if nap > 10000000 {
				nap = 10000000
			}
			time.Sleep(time.Duration(nap))
		}
	}
}

//go:linkname nanotime runtime.nanotime
func nanotime() int64

// Now is the Go runtime's monotonic clock in ns (the one time.Now uses).
func Now() uint64 { return uint64(nanotime()) }

func Since(t0 uint64) uint64 { return Diff(Now(), t0) }

func Diff(later, earlier uint64) uint64 {
	if later > earlier {
		return later - earlier
	}
	return 0
}

func SleepNs(ns uint64) { time.Sleep(time.Duration(ns)) }

// Mix is wl_mix: splitmix64's finaliser, the per-item checksum hash.
func Mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

var loopsPerNs = 1.0

// spinLoops is a dependent loop the compiler keeps: not inlined, and its
// result is returned (callers drop it).
//
//go:noinline
func spinLoops(n uint64) uint64 {
	var x uint64
	for i := uint64(0); i < n; i++ {
		x += i
	}
	return x
}

func calibrate() {
	const n = 1000000
	best := int64(1 << 62)
	for k := 0; k < 5; k++ {
		t0 := nanotime()
		spinLoops(n)
		if dt := nanotime() - t0; dt < best {
			best = dt
		}
	}
	if best > 0 {
		loopsPerNs = float64(n) / float64(best)
	}
}

// Work is wl_work: about ns of calibrated busy work.
func Work(ns int64) {
	if ns > 0 {
		spinLoops(uint64(float64(ns) * loopsPerNs))
	}
}

// Histograms are kept between runs (as the C harness's pool), by goroutine
// index; each is allocated on its first value.
var histPool [2][]*Hist

func histFor(i, kind int) *Hist {
	for len(histPool[kind]) <= i {
		histPool[kind] = append(histPool[kind], &Hist{})
	}
	h := histPool[kind][i]
	h.reset()
	return h
}

// Payload is the element type of a pattern whose --payload is the size of a
// channel's item: Go channels have a static element type, so the twins are
// instantiated for these sizes (PayloadSizes), and cpbench refuses another
// --payload for impl=go.
type Payload interface {
	[8]byte | [16]byte | [24]byte | [32]byte | [64]byte | [128]byte | [256]byte | [1024]byte | [4096]byte
}

var PayloadSizes = []int64{8, 16, 24, 32, 64, 128, 256, 1024, 4096}

// BySize maps each of PayloadSizes to f instantiated for it.
type BySize map[int64]func(*Run) error

func (m BySize) run(r *Run) error {
	f := m[r.Cfg.Payload]
	if f == nil {
		return fmt.Errorf("--payload=%d: the Go twin has no item of that size", r.Cfg.Payload)
	}
	return f(r)
}

func bytesOf[T Payload](p *T) []byte { return unsafe.Slice((*byte)(unsafe.Pointer(p)), len(*p)) }

// Errs collects a run's errors from many goroutines, as the C workloads'
// note_error: the first one's message and two figures, and how many.
type Errs struct {
	mu    sync.Mutex
	n     uint64
	first string
	a, b  uint64
}

func (e *Errs) note(what string, a, b uint64) {
	e.mu.Lock()
	if e.n == 0 {
		e.first, e.a, e.b = what, a, b
	}
	e.n++
	e.mu.Unlock()
}

// waitFor waits for wg at most d; true if it finished in time. The
// goroutine it starts ends when wg does (a caller that gets false releases
// the stragglers and waits on the returned channel).
func waitFor(wg *sync.WaitGroup, d time.Duration) (<-chan struct{}, bool) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-done:
		return done, true
	case <-t.C:
		return done, false
	}
}
