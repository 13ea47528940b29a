package main

// ratelimit: T goroutines (--threads) take tokens from one token bucket
// with golang.org/x/time/rate's semantics: the twin of workloads/ratelimit.c
// (seed 000's scale_ratelimit; the playbook's rate.NewLimiter(r, b) with
// Wait, Allow and Reserve).
//
// Strategies (--set strategy; the metric `strategy` says which ran):
//   locked (1): x/time/rate's own rate.Limiter (float tokens under its
//     mutex), the library the C's locked bucket reimplements; AllowN,
//     ReserveN and Reservation.CancelAt with the time taken under a mutex of
//     the twin's, so that the limiter sees its callers' times in order
//     (lkReserve: x/time/rate over-admits when they come out of order,
//     golang/go#56287); strategy=0 ("by backend") picks it too, Go having
//     one runtime and not three backends;
//   cas (2): the C's lock-free bucket in Go: the GCRA "theoretical arrival
//     time" in 1/1024 ns since the limiter was made, one atomic.Uint64
//     updated by CompareAndSwap.
// Both run the same WaitN: x/time/rate's algorithm (rate.go's wait) on
// their reserve, the sleep a time.Timer in a select with ctx.Done(), so
// that the booked time to act is known for late_p99_ns (Limiter.WaitN keeps
// it to itself, and reads the clock outside the limiter's mutex).
//
// One op: one admitted call (n tokens granted and used). Latency: the call
// (Wait, Reserve then its sleep, or Allow retried) -> admitted, 1 in
// --lat-sample calls. Parameters, invariants and metrics: those of the C
// original (see its header), the bounded waits under context.Context
// (WithCancel for the run and cancel_after_ms, WithTimeout for deadline_us).
//
// Variant seed: the playbook's ticker-channel limiter (rateLimiter(rate,
// burst) <-chan time.Time: a goroutine forwards each time.Ticker tick into a
// channel of capacity burst, dropping it when full). It starts empty, loses
// the ticks the forwarder takes late, and its forwarder has no way to stop:
// the run finds it still running after the last caller left and fails
// ("leaked 1 thread"), then releases it (an internal ctx) so that it ends.

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

const (
	rlOpWait = iota
	rlOpAllow
	rlOpReserve
	rlOpMix
)

const (
	rlAuto = iota
	rlLocked
	rlCAS
	rlTicker
)

// What a wait returns: x/time/rate's errors, by cause.
type rlStatus int

const (
	rlOK rlStatus = iota
	rlBurst
	rlWouldExceed
	rlCtx
)

const (
	rlFP      = 1024 // cas state: units of 1/1024 ns
	rlNever   = math.MaxUint64
	rlBoundNs = 1000000000 // cancel -> every goroutine stopped
)

type rlResv struct {
	ok    bool
	n     int64
	act   uint64 // time to act, on the Now() clock
	actFP uint64 // cas: the same, in state units
	rv    *rate.Reservation
}

type rlLimiter struct {
	strategy int
	limit    float64
	burst    int64
	created  uint64 // Now() at creation: the bucket was full then
	// locked
	mu  sync.Mutex // orders the times lim sees (lkReserve)
	lim *rate.Limiter
	// cas
	tat      atomic.Uint64 // state units since created
	inc, tau uint64        // one token's interval, burst x inc (state units)
	// ticker (the seed)
	period             uint64
	ticker             *time.Ticker
	bucket             chan time.Time
	reapCtx            context.Context // ends the forwarder: only the run cancels it
	reap               context.CancelFunc
	forwarderAlive     atomic.Int32
	ticksIn, ticksFull atomic.Uint64
}

func rlNewLimiter(strategy int, limit float64, burst int64) *rlLimiter {
	l := &rlLimiter{strategy: strategy, limit: limit, burst: burst, created: Now()}
	switch strategy {
	case rlLocked:
		l.lim = rate.NewLimiter(rate.Limit(limit), int(burst)) // initially full
	case rlCAS:
		// rounded up: the packed bucket never runs faster than limit
		l.inc = uint64(math.Ceil(rlFP * 1e9 / limit))
		if l.inc == 0 {
			l.inc = 1
		}
		l.tau = uint64(burst) * l.inc // tat 0: full at creation
	default: // rlTicker, the seed
		l.period = uint64(1e9 / limit)
		if l.period == 0 {
			l.period = 1
		}
		l.bucket = make(chan time.Time, burst)
		l.reapCtx, l.reap = context.WithCancel(context.Background())
		l.ticker = time.NewTicker(time.Duration(l.period))
		l.forwarderAlive.Store(1)
	}
	return l
}

func (l *rlLimiter) casNow(now uint64) uint64 {
	if now > l.created {
		return (now - l.created) * rlFP
	}
	return 0
}

func (l *rlLimiter) casReserve(now uint64, n int64, maxWait uint64) rlResv {
	if n > l.burst {
		return rlResv{}
	}
	nf, need := l.casNow(now), uint64(n)*l.inc
	for {
		s := l.tat.Load()
		s2 := nf
		if s > s2 {
			s2 = s
		}
		s2 += need
		var act uint64
		if s2 > l.tau {
			act = s2 - l.tau
		}
		var waitFP uint64
		if act > nf {
			waitFP = act - nf
		}
		wait := (waitFP + rlFP - 1) / rlFP // round up: never early
		if wait > maxWait {
			return rlResv{} // refused: nothing booked
		}
		if l.tat.CompareAndSwap(s, s2) {
			return rlResv{ok: true, n: n, act: now + wait, actFP: act}
		}
	}
}

func (l *rlLimiter) casCancel(r *rlResv, now uint64) {
	if r.n == 0 || r.act < now {
		return
	}
	nf, give := l.casNow(now), uint64(r.n)*l.inc
	for {
		s := l.tat.Load()
		// booked after r: the latest time to act (tat - tau) beyond r's
		var latest, later uint64
		if s > l.tau {
			latest = s - l.tau
		}
		if latest > r.actFP {
			later = latest - r.actFP
		}
		if later >= give {
			return
		}
		s2 := s - (give - later)
		if s2 < nf {
			s2 = nf // capped at burst: full from now
		}
		if s2 >= s {
			return
		}
		if l.tat.CompareAndSwap(s, s2) {
			return
		}
	}
}

// lkReserve: the locked strategy's ReserveN(now, n) with a maximum wait, on
// the rate.Limiter. The time is taken under l.mu, so that the limiter sees
// its callers' times in order: x/time/rate moves its `last` back to a time
// earlier than the last one it saw (advance: `if t.Before(last) { last = t
// }`), and the next caller is then credited again for the interval in
// between (golang/go#56287), which breaks "never more than burst + limit x
// elapsed" by a fraction of a token each time a caller that read the clock
// first takes the limiter's mutex second, as happens all the time when
// several goroutines share one limiter (a run of 2000 Waits over 4
// goroutines admitted 1346 tokens against a bound of 1345.96). The C's
// locked bucket clamps such a time to `last` instead.
func (l *rlLimiter) lkReserve(n int64, maxWait uint64) rlResv {
	l.mu.Lock()
	defer l.mu.Unlock()
	t := time.Now()
	if maxWait == 0 {
		return rlResv{ok: l.lim.AllowN(t, int(n)), n: n}
	}
	rv := l.lim.ReserveN(t, int(n))
	if !rv.OK() {
		return rlResv{}
	}
	d := rv.DelayFrom(t)
	if maxWait != rlNever && uint64(d) > maxWait {
		// WaitN's "would exceed context deadline": nothing booked (the
		// reservation is the last one and its time to act is to come, so
		// CancelAt gives back all of it)
		rv.CancelAt(t)
		return rlResv{}
	}
	// Now() after time.Now(): the time to act comes out a few ns late, never early
	return rlResv{ok: true, n: n, act: Now() + uint64(d), rv: rv}
}

// reserve is ReserveN(now, n) with a maximum wait (0: AllowN; rlNever: ReserveN).
func (l *rlLimiter) reserve(n int64, maxWait uint64) rlResv {
	if l.strategy == rlCAS {
		return l.casReserve(Now(), n, maxWait)
	}
	return l.lkReserve(n, maxWait)
}

func (l *rlLimiter) cancel(r *rlResv) {
	if !r.ok {
		return
	}
	if l.strategy == rlCAS {
		l.casCancel(r, Now())
	} else if r.rv != nil {
		l.mu.Lock()
		r.rv.CancelAt(time.Now()) // under l.mu: see lkReserve
		l.mu.Unlock()
	}
}

func (l *rlLimiter) allow(n int64) bool {
	if l.strategy == rlTicker {
		got := int64(0)
	take:
		for got < n {
			select {
			case <-l.bucket:
				got++
			default:
				break take
			}
		}
		return got == n // the seed's: a partial take is lost
	}
	return l.reserve(n, 0).ok
}

// rlSleep sleeps ns, or until the ctx ends (its error).
func rlSleep(ctx context.Context, ns uint64) error {
	tm := time.NewTimer(time.Duration(ns))
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// wait is WaitN(ctx, n), as x/time/rate's (wait in rate.go): an error at
// once for n > burst or a done ctx, a refusal booking nothing if the wait
// would pass the ctx's deadline, else book, sleep (a time.Timer against the
// ctx) and Cancel the reservation if the ctx ends first. act: the booked
// time to act (0 if it did not wait); why: the ctx's error.
func (l *rlLimiter) wait(ctx context.Context, n int64) (st rlStatus, act uint64, why error) {
	if l.strategy == rlTicker {
		for i := int64(0); i < n; i++ {
			select {
			case <-l.bucket:
			case <-ctx.Done():
				return rlCtx, 0, ctx.Err()
			}
		}
		return rlOK, 0, nil
	}
	dl, hasDeadline := ctx.Deadline()
	if n > l.burst {
		return rlBurst, 0, nil
	}
	if err := ctx.Err(); err != nil {
		return rlCtx, 0, err
	}
	maxWait := uint64(rlNever)
	if hasDeadline {
		if d := time.Until(dl); d > 0 {
			maxWait = uint64(d)
		} else {
			return rlWouldExceed, 0, nil // reserveN(t, n, waitLimit <= 0) is never OK
		}
	}
	var now uint64
	r := l.reserve(n, maxWait)
	if !r.ok {
		return rlWouldExceed, 0, nil
	}
	if now = Now(); r.act <= now {
		return rlOK, 0, nil
	}
	if err := rlSleep(ctx, r.act-now); err != nil {
		l.cancel(&r)
		return rlCtx, 0, err
	}
	return rlOK, r.act, nil
}

// forward is the seed's forwarder: `for t := range ticker.C { select {
// case tokens <- t: default: } }`. Nothing in the seed ends it; reapCtx is
// the run's way to release it.
func (l *rlLimiter) forward(t *Thread) {
	var in, full uint64
	t.Phase("range ticker.C")
	done := l.reapCtx.Done()
loop:
	for {
		select {
		case tk := <-l.ticker.C:
			select {
			case l.bucket <- tk:
				in++
			default:
				full++
			}
			l.ticksIn.Store(in)
			l.ticksFull.Store(full)
		case <-done:
			break loop
		}
	}
	l.ticker.Stop()
	l.forwarderAlive.Store(0)
	t.Phase("done")
}

// x/time/rate's semantics on a private limiter of the same strategy (every run).
func rlCheckSemantics(r *Run, strategy int) {
	s := "locked"
	if strategy == rlCAS {
		s = "cas"
	}
	l := rlNewLimiter(strategy, 0.1, 2)
	bg := context.Background()
	cancelled, cancel := context.WithCancel(bg)
	cancel()
	soon, cancelSoon := context.WithTimeout(bg, time.Second)
	defer cancelSoon()
	if !l.allow(1) || !l.allow(1) {
		r.Fail("%s limiter: a new limiter (burst 2) refused one of its first 2 Allows: the bucket must start full", s)
	}
	// 10 s per token: nothing refills within this check unless it stalls 5 s
	fresh := Since(l.created) < 5000000000
	if fresh && l.allow(1) {
		r.Fail("%s limiter: Allow succeeded on an empty bucket", s)
	}
	if st, _, _ := l.wait(bg, 3); st != rlBurst {
		r.Fail("%s limiter: WaitN(3) with burst 2 did not fail at once", s)
	}
	if st, _, why := l.wait(soon, 1); st != rlWouldExceed {
		r.Fail("%s limiter: WaitN needing ~10 s under a 1 s deadline returned %d (%v), not \"would exceed "+
			"context deadline\" at once", s, st, why)
	}
	if fresh && l.allow(1) {
		r.Fail("%s limiter: a refused WaitN booked nothing, yet Allow then succeeded", s)
	}
	if st, _, why := l.wait(cancelled, 1); st != rlCtx || why != context.Canceled {
		r.Fail("%s limiter: Wait on a cancelled ctx returned %d (%v), not context.Canceled", s, st, why)
	}
	a := l.reserve(1, rlNever)
	d1 := Diff(a.act, Now())
	l.cancel(&a)
	b := l.reserve(1, rlNever)
	d2 := Diff(b.act, Now())
	if !a.ok || !b.ok {
		r.Fail("%s limiter: Reserve of 1 token (burst 2) not OK", s)
	} else if fresh && (d1 < 5000000000 || d2 > d1+2000000000) {
		r.Fail("%s limiter: Reserve, Cancel, Reserve: delays %.3f s then %.3f s (Cancel must give the token "+
			"back: ~10 s both times)", s, float64(d1)/1e9, float64(d2)/1e9)
	}
	l.cancel(&b)
	if l.reserve(3, rlNever).ok {
		r.Fail("%s limiter: ReserveN(3) with burst 2 was OK", s)
	}
}

// the wait and late histograms of each worker, kept between runs
var rlHistPool []*Hist

func rlHists(n int) []*Hist {
	for len(rlHistPool) < n {
		rlHistPool = append(rlHistPool, &Hist{})
	}
	for _, h := range rlHistPool[:n] {
		h.reset()
	}
	return rlHistPool[:n]
}

func rlAtomicMax(a *atomic.Uint64, v uint64) {
	for prev := a.Load(); prev < v && !a.CompareAndSwap(prev, v); prev = a.Load() {
	}
}

func rlFired(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// rlWaitFor waits ns, or until done is closed.
func rlWaitFor(done <-chan struct{}, ns uint64) {
	tm := time.NewTimer(time.Duration(ns))
	defer tm.Stop()
	select {
	case <-done:
	case <-tm.C:
	}
}

// Time-based: until the duration ends, or until every worker has stopped
// (a cancel ended them: the rest of the duration would be idle).
func rlWaitDurationOr(r *Run, done <-chan struct{}) {
	if r.Cfg.Duration <= 0 {
		return
	}
	end := r.TStart + uint64(r.Cfg.Duration*1e9)
	if now := Now(); end > now {
		rlWaitFor(done, end-now)
	}
	if !rlFired(done) {
		r.WaitDuration()
	}
}

func rlRun(r *Run) error {
	c := r.Cfg
	threads := int(c.Threads)
	strategy := rlLocked
	switch {
	case c.Variant == "seed":
		strategy = rlTicker
	case c.Param("strategy") != rlAuto:
		strategy = int(c.Param("strategy"))
	}
	limit := float64(c.Param("limit"))
	burst, n, op := c.Param("burst"), c.Param("n"), c.Param("op")
	deadlineUs, cancelMs := c.Param("deadline_us"), c.Param("cancel_after_ms")
	items := uint64(c.Items)
	if strategy != rlTicker {
		rlCheckSemantics(r, strategy)
	}

	// the run's ctx: cancelled at cancel_after_ms or at the end of --duration
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var tickets, admittedCalls, admittedTokens, abandonedN, rejectedN atomic.Uint64
	var over, overK, overDt, lastAdmit, lastExit, nerrors atomic.Uint64
	var firstError atomic.Value
	noteError := func(what string) {
		firstError.CompareAndSwap(nil, what)
		nerrors.Add(1)
	}
	live := int32(threads)
	workersDone := make(chan struct{})
	hists := rlHists(2 * threads)
	var l *rlLimiter // made just before the gate opens, which publishes it

	// At every admission: tokens admitted so far <= burst + limit x elapsed.
	admitted := func(n int64) {
		k := admittedTokens.Add(uint64(n))
		now := Now()
		dt := Diff(now, l.created)
		bound := float64(l.burst) + float64(dt)*l.limit/1e9 + 0.01
		if float64(k) > bound && over.Add(1) == 1 {
			overK.Store(k)
			overDt.Store(dt)
		}
		rlAtomicMax(&lastAdmit, now)
	}

	if strategy == rlTicker {
		r.Spawn("ticker forwarder", func(t *Thread) { l.forward(t) })
	}
	for i := 0; i < threads; i++ {
		waitH, lateH := hists[2*i], hists[2*i+1]
		r.Spawn("worker", func(t *Thread) {
			done := ctx.Done()
			interval := uint64(1e9*float64(n)/l.limit) + 1
			var ops, rejected, abandoned, k uint64
			untilSample := int64(0)
			for !r.Stopped() && !rlFired(done) {
				if c.Duration <= 0 {
					if k = tickets.Add(1) - 1; k >= items {
						break
					}
				} else {
					k++
				}
				o := op
				if op == rlOpMix {
					o = int64(k % 3)
				}
				t0 := Now()
				var act uint64
				ok := false
			call:
				for !ok {
					switch {
					case o == rlOpWait:
						t.Phase("Wait")
						wctx, wcancel := ctx, context.CancelFunc(nil)
						if deadlineUs > 0 {
							wctx, wcancel = context.WithTimeout(ctx, time.Duration(deadlineUs)*time.Microsecond)
						}
						var st rlStatus
						st, act, _ = l.wait(wctx, n)
						if wcancel != nil {
							wcancel()
						}
						switch {
						case st == rlOK:
							ok = true
						case st == rlBurst:
							noteError("WaitN failed for n > burst with n <= burst")
							break call
						case rlFired(done): // the run's cancel
							break call
						case st == rlCtx && deadlineUs == 0:
							noteError("Wait ended by its ctx, which nobody cancelled")
							break call
						default: // refused for its deadline: try again later
							rejected++
							if rlSleep(ctx, uint64(deadlineUs)*1000) != nil {
								break call
							}
						}
					case o == rlOpAllow:
						t.Phase("Allow")
						if l.allow(n) {
							ok = true
						} else {
							rejected++
							if rlSleep(ctx, interval) != nil {
								break call
							}
						}
					case l.strategy == rlTicker: // the seed has no Reserve
						t.Phase("Wait (seed Reserve)")
						if st, _, _ := l.wait(ctx, n); st != rlOK {
							break call
						}
						ok = true
					default:
						t.Phase("Reserve")
						rv := l.reserve(n, rlNever)
						if !rv.ok {
							noteError("Reserve of n <= burst was not OK")
							break call
						}
						if now := Now(); rv.act > now {
							act = rv.act
							if rlSleep(ctx, rv.act-now) != nil {
								l.cancel(&rv)
								break call
							}
						}
						ok = true
					}
				}
				if !ok { // cancelled (or an error noted) with a call begun
					abandoned++
					break
				}
				admitted(n)
				now := Now()
				wait := Diff(now, t0)
				waitH.Record(wait)
				if act != 0 {
					lateH.Record(Since(act))
				}
				if c.LatSample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = c.LatSample
						t.Hist.Record(wait)
					}
				}
				ops++
			}
			admittedCalls.Add(ops)
			rejectedN.Add(rejected)
			abandonedN.Add(abandoned)
			t.Ops = ops
			rlAtomicMax(&lastExit, Now())
			if atomic.AddInt32(&live, -1) == 0 {
				close(workersDone)
			}
			t.Phase("done")
		})
	}
	// made last, just before the gate opens: refill while nobody can call
	// yet would be lost to the cap
	l = rlNewLimiter(strategy, limit, burst)

	var cancelledAt uint64
	r.Start()
	if cancelMs > 0 {
		// cancel after cancel_ms, unless the run is over by then
		rlWaitFor(workersDone, uint64(cancelMs)*1000000)
		if !rlFired(workersDone) {
			cancelledAt = Now()
			cancel()
		}
	}
	if c.Duration > 0 {
		rlWaitDurationOr(r, workersDone)
		if cancelledAt == 0 && !rlFired(workersDone) { // wake the sleepers: the run is over
			cancelledAt = Now()
			cancel()
		}
	}
	<-workersDone
	workersEnd := Now()
	ticksIn := l.ticksIn.Load()

	// the seed's forwarder: nothing stops it; count it, then release it
	if strategy == rlTicker {
		t0 := Now()
		for l.forwarderAlive.Load() != 0 && Since(t0) < 50000000 {
			SleepNs(1000000)
		}
		if l.forwarderAlive.Load() != 0 {
			r.Fail("leaked 1 thread: the seed limiter's ticker forwarder goroutine still runs %.0f ms after the "+
				"last caller left (rateLimiter() returns only its channel: nothing can stop it); achieved %.0f "+
				"tokens/s of %.0f configured", float64(Since(t0))/1e6,
				float64(admittedTokens.Load())*1e9/float64(Diff(workersEnd, l.created)), limit)
		}
		l.reap()
	}
	r.Join()

	calls, tokens, abandoned := admittedCalls.Load(), admittedTokens.Load(), abandonedN.Load()
	if ne := nerrors.Load(); ne != 0 {
		r.Fail("%s (%d times)", firstError.Load(), ne)
	}
	if o := over.Load(); o != 0 {
		dt := overDt.Load()
		r.Fail("limiter admitted %d tokens %.6f s after its creation: more than burst %d + limit %.0f/s x "+
			"elapsed = %.2f (%d admissions over the bound)", overK.Load(), float64(dt)/1e9, burst, limit,
			float64(burst)+float64(dt)*limit/1e9, o)
	}
	if tokens != calls*uint64(n) {
		r.Fail("tokens admitted %d != calls admitted %d x n %d", tokens, calls, n)
	}
	if c.Duration <= 0 {
		begun := tickets.Load()
		if begun > items {
			begun = items
		}
		if begun != calls+abandoned {
			r.Fail("calls lost: %d begun != %d admitted + %d abandoned on the cancel", begun, calls, abandoned)
		}
		if cancelledAt == 0 && calls != items {
			r.Fail("admitted %d calls, expected --items %d", calls, items)
		}
	}
	if cancelledAt == 0 && abandoned != 0 {
		r.Fail("%d calls abandoned without a cancel", abandoned)
	}
	if le := lastExit.Load(); cancelledAt != 0 && le > cancelledAt && le-cancelledAt > rlBoundNs {
		r.Fail("cancellation took %.3f s to stop every caller (bound 1 s): a sleep did not honour the ctx",
			float64(le-cancelledAt)/1e9)
	}

	var wait, late Hist
	for i := 0; i < threads; i++ {
		wait.merge(hists[2*i])
		late.merge(hists[2*i+1])
	}
	var secs, achieved float64
	if la := lastAdmit.Load(); la > l.created {
		secs = float64(la-l.created) / 1e9
	}
	if secs > 0 && tokens > uint64(burst) {
		achieved = float64(tokens-uint64(burst)) / secs
	}
	r.Metric("achieved_rate", achieved)
	r.Metric("rate_error_pct", 100*(achieved-limit)/limit)
	r.Metric("wait_p50_ns", float64(wait.Percentile(50)))
	r.Metric("wait_p99_ns", float64(wait.Percentile(99)))
	r.Metric("late_p99_ns", float64(late.Percentile(99)))
	r.Metric("rejected", float64(rejectedN.Load()))
	r.Metric("strategy", float64(strategy))
	if strategy == rlTicker {
		periods := Diff(workersEnd, l.created) / l.period
		lost := 0.0
		if periods > ticksIn {
			lost = float64(periods - ticksIn)
		}
		r.Metric("seed_ticks_lost", lost)
	}
	r.Ops = calls
	return nil
}

func init() {
	register(&Pattern{
		Name:     "ratelimit",
		Params:   []string{"limit", "burst", "n", "op", "strategy", "deadline_us", "cancel_after_ms"},
		Variants: []string{"default", "seed"},
		Metrics: []string{"achieved_rate", "rate_error_pct", "wait_p50_ns", "wait_p99_ns", "late_p99_ns",
			"rejected", "strategy", "seed_ticks_lost"},
		Run: rlRun,
	})
}
