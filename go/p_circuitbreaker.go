package main

// circuitbreaker: N callers run a protected call through one circuit breaker
// with sony/gobreaker's semantics; the twin of workloads/circuitbreaker.c
// (seeds 002 and 003 sketch it). The downstream busy-works --work-ns and
// fails with probability fail_pct %, and every call during an outage window
// (outage_at_ms .. + outage_ms after the start).
//
// The breaker (gobreaker's beforeRequest / afterRequest / currentState /
// setState / toNewGeneration), under a sync.Mutex held only inside
// beforeRequest and afterRequest: closed (trips to open after trip_after
// consecutive failures; with interval_ms > 0 a new generation every
// interval), open (rejects, ErrOpenState, for open_us; then lazily
// half-open), half-open (admits probes calls, rejects later ones,
// ErrTooManyRequests; probes consecutive successes close it, any failure
// reopens it); a result counts only in the generation that admitted its call.
//
// One op: a call decided (run through the downstream, or rejected).
// Latency: the whole Execute. A rejected caller sleeps reject_us before its
// next call.
//
// Variant seed: seed 002's CircuitBreaker.Call, the lock held across the
// protected call (mu.Lock(); defer mu.Unlock(); fn()): every call is
// serialised and the rendezvous of callers 0 and 1 in the downstream fails.
//
// Invariants (as the C original): every call decided once; the downstream
// ran exactly the admitted calls; per-state admitted counts of the
// generations equal the downstream's; no generation counted more results
// than it admitted; half-open admitted at most probes; only the four legal
// edges, each by its rule; open -> half-open no sooner than open_us; with
// >= 2 callers the first calls of callers 0 and 1 overlap in the downstream
// (1 s bound); count-mode total; every goroutine ended.

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	cbClosed = iota
	cbHalf
	cbOpen
)

var cbStateName = [3]string{"closed", "half-open", "open"}

const (
	cbRunOK = iota
	cbRunFailed
	cbRejectOpen
	cbRejectMany
)

type cbCounts struct{ requests, totalSucc, totalFail, consecSucc, consecFail uint64 }

// cbBreaker: everything below mu is under mu.
type cbBreaker struct {
	mu                                       sync.Mutex
	seed                                     bool // the lock is held across the call
	tripAfter, maxReq, timeoutNs, intervalNs uint64
	state                                    int
	gen, expiry                              uint64 // expiry 0: none
	c                                        cbCounts
	openedAt, trips                          uint64
	admittedIn                               [3]uint64
	outageStart, outageEnd                   uint64 // set before the start, read-only after
	trippedInOutage                          bool
	closedAfterOutage                        uint64
	bad                                      uint64 // violations seen at a transition
	badWhat                                  string
}

func (b *cbBreaker) noteBad(what string, a, x uint64) {
	if b.bad == 0 {
		b.badWhat = fmt.Sprintf("%s (%d, %d)", what, a, x)
	}
	b.bad++
}

// genEnd: the current generation ends: account what it admitted, check its
// counts.
func (b *cbBreaker) genEnd() {
	b.admittedIn[b.state] += b.c.requests
	if b.c.totalSucc+b.c.totalFail > b.c.requests {
		b.noteBad("a generation counted more results than it admitted (results, requests)",
			b.c.totalSucc+b.c.totalFail, b.c.requests)
	}
	if b.state == cbHalf && b.c.requests > b.maxReq {
		b.noteBad("half-open admitted more than probes calls (requests, probes)", b.c.requests, b.maxReq)
	}
	if b.state == cbOpen && b.c.requests > 0 {
		b.noteBad("the open state admitted calls (requests)", b.c.requests, 0)
	}
}

// toNewGeneration
func (b *cbBreaker) startGeneration(now uint64) {
	b.gen++
	b.c = cbCounts{}
	switch b.state {
	case cbClosed:
		b.expiry = 0
		if b.intervalNs > 0 {
			b.expiry = now + b.intervalNs
		}
	case cbOpen:
		b.expiry = now + b.timeoutNs
	default:
		b.expiry = 0
	}
}

func (b *cbBreaker) setState(to int, now uint64) {
	from := b.state
	if from == to {
		return
	}
	// the observer: the edge and the rule that allows it
	switch {
	case from == cbClosed && to == cbOpen:
		if b.c.consecFail < b.tripAfter {
			b.noteBad("tripped with fewer than trip_after consecutive failures (failures, K)", b.c.consecFail,
				b.tripAfter)
		}
		b.trips++
		b.openedAt = now
		if now >= b.outageStart && now < b.outageEnd {
			b.trippedInOutage = true
		}
	case from == cbOpen && to == cbHalf:
		if now-b.openedAt < b.timeoutNs {
			b.noteBad("half-open before the open timeout (ns open, timeout ns)", now-b.openedAt, b.timeoutNs)
		}
	case from == cbHalf && to == cbClosed:
		if b.c.consecSucc < b.maxReq {
			b.noteBad("closed with fewer than probes consecutive successes (successes, M)", b.c.consecSucc,
				b.maxReq)
		}
		if b.trippedInOutage && b.closedAfterOutage == 0 && now >= b.outageEnd {
			b.closedAfterOutage = now
		}
	case from == cbHalf && to == cbOpen:
		if b.c.consecFail == 0 {
			b.noteBad("reopened without a failure", 0, 0)
		}
		b.openedAt = now
	default:
		b.noteBad("illegal state change (from, to)", uint64(from), uint64(to))
	}
	b.genEnd()
	b.state = to
	b.startGeneration(now)
}

// currentState: the lazy transitions that time makes.
func (b *cbBreaker) currentState(now uint64) int {
	if b.state == cbClosed && b.expiry != 0 && b.expiry <= now {
		b.genEnd()
		b.startGeneration(now)
	} else if b.state == cbOpen && b.expiry <= now {
		b.setState(cbHalf, now)
	}
	return b.state
}

// beforeRequest: cbRunOK (admitted, in generation gen and state st) or a
// rejection.
func (b *cbBreaker) beforeRequest() (d int, gen uint64, st int) {
	s := b.currentState(Now())
	if s == cbOpen {
		return cbRejectOpen, 0, s
	}
	if s == cbHalf && b.c.requests >= b.maxReq {
		return cbRejectMany, 0, s
	}
	b.c.requests++
	return cbRunOK, b.gen, s
}

func (b *cbBreaker) afterRequest(gen uint64, ok bool) {
	now := Now()
	s := b.currentState(now)
	if gen != b.gen {
		return // a result of an older generation
	}
	if ok {
		b.c.totalSucc++
		b.c.consecSucc++
		b.c.consecFail = 0
		if s == cbHalf && b.c.consecSucc >= b.maxReq {
			b.setState(cbClosed, now)
		}
	} else {
		b.c.totalFail++
		b.c.consecFail++
		b.c.consecSucc = 0
		if s == cbClosed && b.c.consecFail >= b.tripAfter {
			b.setState(cbOpen, now)
		} else if s == cbHalf {
			b.setState(cbOpen, now)
		}
	}
}

type cbState struct {
	r                 *Run
	br                cbBreaker
	threads           int
	perThread, extra  uint64
	failPct, rejectNs uint64
	workNs            int64
	// the downstream's own accounting
	callsIn               [3]uint64
	inflight, maxInflight uint64
	// the rendezvous of callers 0 and 1 (when both have calls to make)
	rdv                bool
	rdvIn, rdvResolved int32
	rdvWaitedNs        uint64 // a participant that gave up: how long it waited
	rdvDone            chan struct{}
	// callers' totals
	attempts, admitted, rejOpen, rejMany uint64
}

type cbCaller struct {
	s   *cbState
	id  int
	rng uint64
}

func cbNextRand(x *uint64) uint64 {
	*x ^= *x << 13
	*x ^= *x >> 7
	*x ^= *x << 17
	return *x
}

// rendezvous: callers 0 and 1 meet in the downstream with their first
// calls; each waits (1 s at most) until the other is in the downstream too.
func (s *cbState) rendezvous() {
	atomic.AddInt32(&s.rdvIn, 1)
	t0 := Now()
	for atomic.LoadInt32(&s.rdvIn) < 2 && !s.r.Stopped() {
		if waited := Since(t0); waited > 1000000000 {
			atomic.StoreUint64(&s.rdvWaitedNs, waited)
			return
		}
		SleepNs(20000)
	}
}

func (s *cbState) rdvResolve() {
	if atomic.AddInt32(&s.rdvResolved, 1) == 2 {
		close(s.rdvDone)
	}
}

// downstream: the protected call, busy work then success or failure.
func (a *cbCaller) downstream(admittedIn int, rdv bool) bool {
	s := a.s
	in := atomic.AddUint64(&s.inflight, 1)
	for m := atomic.LoadUint64(&s.maxInflight); in > m && !atomic.CompareAndSwapUint64(&s.maxInflight, m, in); {
		m = atomic.LoadUint64(&s.maxInflight)
	}
	atomic.AddUint64(&s.callsIn[admittedIn], 1)
	if rdv {
		s.rendezvous()
	}
	Work(s.workNs)
	now := Now()
	ok := !(now >= s.br.outageStart && now < s.br.outageEnd) &&
		!(s.failPct > 0 && cbNextRand(&a.rng)%100 < s.failPct)
	atomic.AddUint64(&s.inflight, ^uint64(0))
	return ok
}

// execute is gobreaker's Execute.
func (a *cbCaller) execute(rdv bool) int {
	b := &a.s.br
	b.mu.Lock()
	d, gen, st := b.beforeRequest()
	if d != cbRunOK {
		b.mu.Unlock()
		return d
	}
	if !b.seed {
		b.mu.Unlock()
	}
	ok := a.downstream(st, rdv)
	if !b.seed {
		b.mu.Lock()
	}
	b.afterRequest(gen, ok)
	b.mu.Unlock()
	if ok {
		return cbRunOK
	}
	return cbRunFailed
}

func (a *cbCaller) run(t *Thread) {
	s := a.s
	r := s.r
	n := s.perThread
	if uint64(a.id) < s.extra {
		n++
	}
	sample := r.Cfg.LatSample
	untilSample := int64(0)
	var i, admitted, rejOpen, rejMany uint64
	rdv := s.rdv && a.id < 2
	if s.rdv && a.id >= 2 {
		t.Phase("wait for the rendezvous")
		<-s.rdvDone
	}
	t.Phase("call")
	for ; r.More(i, n); i++ {
		var t0 uint64
		if sample > 0 {
			if untilSample--; untilSample <= 0 {
				untilSample = sample
				t0 = Now()
			}
		}
		d := a.execute(rdv)
		if t0 != 0 {
			t.Hist.Record(Since(t0))
		}
		if rdv {
			rdv = false
			s.rdvResolve() // admitted or not, this caller's part is done
		}
		if d == cbRunOK || d == cbRunFailed {
			admitted++
			continue
		}
		if d == cbRejectOpen {
			rejOpen++
		} else {
			rejMany++
		}
		if s.rejectNs > 0 {
			t.Phase("back off")
			time.Sleep(time.Duration(s.rejectNs))
			t.Phase("call")
		}
	}
	if rdv {
		s.rdvResolve() // stopped before its first call
	}
	atomic.AddUint64(&s.attempts, i)
	atomic.AddUint64(&s.admitted, admitted)
	atomic.AddUint64(&s.rejOpen, rejOpen)
	atomic.AddUint64(&s.rejMany, rejMany)
	t.Ops = i
	t.Phase("done")
}

func circuitbreakerRun(r *Run) error {
	c := r.Cfg
	if c.Param("trip_after") < 1 || c.Param("probes") < 1 || c.Param("fail_pct") < 0 || c.Param("fail_pct") > 100 {
		return errors.New("--set trip_after and probes must be >= 1, fail_pct 0..100")
	}
	s := &cbState{
		r:        r,
		threads:  int(c.Threads),
		failPct:  uint64(c.Param("fail_pct")),
		rejectNs: uint64(c.Param("reject_us")) * 1000,
		workNs:   c.WorkNs,
		rdvDone:  make(chan struct{}),
	}
	b := &s.br
	b.seed = c.Variant == "seed"
	b.tripAfter = uint64(c.Param("trip_after"))
	b.maxReq = uint64(c.Param("probes"))
	b.timeoutNs = uint64(c.Param("open_us")) * 1000
	b.intervalNs = uint64(c.Param("interval_ms")) * 1000000
	b.state = cbClosed
	s.perThread = uint64(c.Items) / uint64(s.threads)
	s.extra = uint64(c.Items) % uint64(s.threads)
	s.rdv = s.threads >= 2 && (c.Duration > 0 || c.Items >= 2)
	for i := 0; i < s.threads; i++ {
		a := &cbCaller{s: s, id: i, rng: Mix(c.Seed^uint64(i)) | 1}
		r.Spawn("caller", a.run)
	}
	t0 := Now()
	if outage := uint64(c.Param("outage_ms")) * 1000000; outage > 0 {
		b.outageStart = t0 + uint64(c.Param("outage_at_ms"))*1000000
		b.outageEnd = b.outageStart + outage
		if b.outageEnd < b.outageStart {
			b.outageEnd = b.outageStart
		}
	}
	if b.intervalNs > 0 {
		b.expiry = t0 + b.intervalNs
	}
	r.Start()
	r.WaitDuration()
	r.Join()
	tEnd := Now()

	b.genEnd() // the last generation's admissions
	attempts, admitted, rejOpen, rejMany := s.attempts, s.admitted, s.rejOpen, s.rejMany
	var calls uint64
	for _, n := range s.callsIn {
		calls += n
	}
	if b.bad > 0 {
		r.Fail("breaker broke gobreaker's rules: %s (%d violations)", b.badWhat, b.bad)
	}
	if attempts != admitted+rejOpen+rejMany {
		r.Fail("calls undecided: attempts %d != admitted %d + rejected open %d + rejected half-open %d",
			attempts, admitted, rejOpen, rejMany)
	}
	if calls != admitted {
		r.Fail("downstream ran %d calls, the breaker admitted %d", calls, admitted)
	}
	for i := range s.callsIn {
		if b.admittedIn[i] != s.callsIn[i] {
			r.Fail("%s generations counted %d admitted calls, the downstream saw %d admitted %s",
				cbStateName[i], b.admittedIn[i], s.callsIn[i], cbStateName[i])
		}
	}
	if s.rdvWaitedNs > 0 {
		r.Fail("calls serialised: the first calls of callers 0 and 1 never overlapped (one waited %.3f s, "+
			"bound 1 s; max in flight %d with %d callers): the lock is held across the protected call",
			float64(s.rdvWaitedNs)/1e9, s.maxInflight, s.threads)
	}
	if c.Duration <= 0 && attempts != uint64(c.Items) {
		r.Fail("made %d calls, asked for %d", attempts, c.Items)
	}
	secs := float64(Diff(tEnd, t0)) / 1e9
	cps := 0.0
	if secs > 0 {
		cps = float64(calls) / secs
	}
	r.Metric("calls_per_s", cps)
	r.Metric("rejected", float64(rejOpen+rejMany))
	r.Metric("trips", float64(b.trips))
	r.Metric("max_inflight", float64(s.maxInflight))
	if b.closedAfterOutage != 0 {
		r.Metric("recovery_ns", float64(b.closedAfterOutage-b.outageEnd))
	}
	r.Ops = attempts
	return nil
}

func init() {
	register(&Pattern{
		Name: "circuitbreaker",
		Params: []string{"trip_after", "open_us", "probes", "interval_ms", "fail_pct", "outage_at_ms",
			"outage_ms", "reject_us"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"calls_per_s", "rejected", "trips", "max_inflight", "recovery_ns"},
		Run:      circuitbreakerRun,
	})
}
