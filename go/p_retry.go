package main

// retry: the twin of workloads/retry.c (seed 003's "Retry with backoff",
// written as it should be): --threads clients call a flaky downstream
// through retry(ctx, fn): up to max_attempts attempts, an exponential
// backoff between them (min(cap, base x 2^attempt)) with jitter (0 none,
// 1 full, 2 equal), each backoff a ctx-aware sleep (a time.Timer in a
// select with ctx.Done(): a cancel ends it at once), and no attempt once the
// ctx has ended. An attempt fails with probability fail_pct %, and every
// attempt fails during an outage of the first outage_ms of the run;
// cancel_after_ms cancels the clients' context.Context.
//
// One op: one call finished (success, attempts exhausted, or cancelled).
// Latency: the call, from its first attempt to its return (1 in LatSample).
// Metrics: attempts_per_success, success_p50_ns / success_p99_ns (from a
// histogram of 2 significant digits, as the C's), exhausted, sleeps,
// wasted_sleep_ns, cancel_ns.
//
// Variant seed: the playbook's loop, `select { case <-time.After(backoff):
// case <-ctx.Done(): }` after every failed attempt, the last one included,
// and no jitter; the run fails naming the calls that slept after their
// final attempt and the time lost.
//
// Invariants (as the C): calls = successes + exhausted + cancelled (count
// mode without a cancel: --items calls, none cancelled); the downstream's
// count of attempts = the clients'; at most max_attempts per call, an
// exhausted call made exactly max_attempts; every backoff within its
// policy's bounds, and a sleep that returned OK lasted at least its
// backoff; no sleep after the last attempt; every client returned within
// 1 s of the cancel; every goroutine ended.

import (
	"context"
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

const (
	retryJitterNone = iota
	retryJitterFull
	retryJitterEqual
)

const (
	retryOK = iota
	retryExhausted
	retryCanceled
)

const retryBound = uint64(time.Second)

type retryState struct {
	r                                *Run
	seed                             bool
	jitter                           int
	failPct, maxAttempts, base, cap  uint64
	outageEnd                        uint64
	ctx                              context.Context
	cancel                           context.CancelFunc
	workersDone                      chan struct{} // closed by the last client to return
	live                             int32
	tickets, downstreamAttempts      uint64
	lastExit                         uint64
	calls, ok, exhausted, cancelled  uint64
	attempts, okAttempts, sleeps     uint64
	wastedCalls, wastedNs            uint64
	badPolicy, earlySleep, badSleeps uint64
	badAttempts, bpA, bpD            uint64
}

func retryRnd(x *uint64) uint64 {
	*x = Mix(*x)
	return *x
}

// The downstream: one attempt; true if it succeeded.
func (s *retryState) downstream(rng *uint64) bool {
	atomic.AddUint64(&s.downstreamAttempts, 1)
	if w := s.r.Cfg.WorkNs; w > 0 {
		Work(w)
	}
	if s.outageEnd != 0 && Now() < s.outageEnd {
		return false
	}
	return retryRnd(rng)%100 >= s.failPct
}

// The backoff before attempt a + 1 (a counts from 0), and its bounds.
func (s *retryState) backoff(a uint64, rng *uint64) (d, lo, hi uint64) {
	d = s.cap
	if a < 40 {
		d = s.base << a
	}
	if d > s.cap {
		d = s.cap
	}
	hi = d
	switch s.jitter {
	case retryJitterFull:
		if d == 0 {
			return 0, 0, hi
		}
		return retryRnd(rng) % (d + 1), 0, hi
	case retryJitterEqual:
		half := d / 2
		if d-half == 0 {
			return half, half, hi
		}
		return half + retryRnd(rng)%(d-half+1), half, hi
	default:
		return d, d, hi
	}
}

// retrySleep is the ctx-aware sleep: a timer raced against ctx.Done(),
// stopped on the cancel.
func retrySleep(ctx context.Context, d time.Duration) error {
	tm := time.NewTimer(d)
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		tm.Stop()
		return ctx.Err()
	}
}

// retrySeedSleep is the seed's: `select { case <-time.After(backoff):
// continue; case <-ctx.Done(): return ctx.Err() }`.
func retrySeedSleep(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

type retryOutcome struct {
	how                       int
	attempts, sleeps, wastedN uint64
}

func (s *retryState) retry(rng *uint64) (o retryOutcome) {
	o.how = retryExhausted
	for a := uint64(0); a < s.maxAttempts; a++ {
		if !s.seed && s.ctx.Err() != nil { // no attempt once the ctx has ended
			o.how = retryCanceled
			return o
		}
		o.attempts++
		if s.downstream(rng) {
			o.how = retryOK
			return o
		}
		if !s.seed && a+1 == s.maxAttempts {
			break // no backoff after the last attempt
		}
		d, lo, hi := s.backoff(a, rng)
		if d < lo || d > hi {
			if atomic.AddUint64(&s.badPolicy, 1) == 1 {
				atomic.StoreUint64(&s.bpA, a)
				atomic.StoreUint64(&s.bpD, d)
			}
		}
		o.sleeps++
		t0 := Now()
		var err error
		if s.seed {
			err = retrySeedSleep(s.ctx, time.Duration(d))
		} else {
			err = retrySleep(s.ctx, time.Duration(d))
		}
		slept := Since(t0)
		if err != nil {
			o.how = retryCanceled
			return o
		}
		if slept < d {
			atomic.AddUint64(&s.earlySleep, 1)
		}
		if a+1 == s.maxAttempts {
			o.wastedN += slept // the seed's sleep after the last one
		}
	}
	return o
}

func (s *retryState) client(t *Thread, index int, success *retryHist) {
	r := s.r
	sample := r.Cfg.LatSample
	items := uint64(r.Cfg.Items)
	rng := Mix(r.Cfg.Seed*131 + uint64(index))
	var calls, ok, exhausted, cancelled, attempts, okAttempts, sleeps uint64
	var wastedCalls, wastedNs, badSleeps, badAttempts uint64
	untilSample := int64(0)
	t.Phase("retry")
	for !r.Stopped() && s.ctx.Err() == nil {
		if r.Cfg.Duration <= 0 && atomic.AddUint64(&s.tickets, 1)-1 >= items {
			break
		}
		t0 := Now()
		o := s.retry(&rng)
		dt := Since(t0)
		calls++
		attempts += o.attempts
		sleeps += o.sleeps
		if o.attempts > s.maxAttempts {
			badAttempts++
		}
		switch o.how {
		case retryOK:
			ok++
			okAttempts += o.attempts
			success.record(dt)
		case retryExhausted:
			exhausted++
			if o.attempts != s.maxAttempts {
				badAttempts++
			}
		default:
			cancelled++
		}
		// finished calls slept between attempts only; a cancelled one was
		// cut in one of them
		if (o.how != retryCanceled && o.sleeps != o.attempts-1) || (o.how == retryCanceled && o.sleeps > o.attempts) {
			badSleeps++
			if o.wastedN > 0 {
				wastedCalls++
				wastedNs += o.wastedN
			}
		}
		if sample > 0 {
			if untilSample--; untilSample <= 0 {
				untilSample = sample
				t.Hist.Record(dt)
			}
		}
	}
	atomic.AddUint64(&s.calls, calls)
	atomic.AddUint64(&s.ok, ok)
	atomic.AddUint64(&s.exhausted, exhausted)
	atomic.AddUint64(&s.cancelled, cancelled)
	atomic.AddUint64(&s.attempts, attempts)
	atomic.AddUint64(&s.okAttempts, okAttempts)
	atomic.AddUint64(&s.sleeps, sleeps)
	atomic.AddUint64(&s.wastedCalls, wastedCalls)
	atomic.AddUint64(&s.wastedNs, wastedNs)
	atomic.AddUint64(&s.badSleeps, badSleeps)
	atomic.AddUint64(&s.badAttempts, badAttempts)
	t.Ops = calls
	now := Now()
	for prev := atomic.LoadUint64(&s.lastExit); prev < now; prev = atomic.LoadUint64(&s.lastExit) {
		if atomic.CompareAndSwapUint64(&s.lastExit, prev, now) {
			break
		}
	}
	if atomic.AddInt32(&s.live, -1) == 0 {
		close(s.workersDone)
	}
	t.Phase("done")
}

func retryClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func retryRun(r *Run) error {
	c := r.Cfg
	threads := int(c.Threads)
	cancelMs := c.Param("cancel_after_ms")
	s := &retryState{
		r:           r,
		seed:        c.Variant == "seed",
		jitter:      int(c.Param("jitter")),
		failPct:     uint64(c.Param("fail_pct")),
		maxAttempts: uint64(c.Param("max_attempts")),
		base:        uint64(c.Param("base_us")) * 1000,
		cap:         uint64(c.Param("cap_us")) * 1000,
		live:        int32(threads),
		workersDone: make(chan struct{}),
	}
	if s.seed {
		s.jitter = retryJitterNone
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()
	success := make([]*retryHist, threads)
	for i := 0; i < threads; i++ {
		i := i
		success[i] = newRetryHist()
		r.Spawn("client", func(t *Thread) { s.client(t, i, success[i]) })
	}

	var cancelledAt uint64
	// the outage starts with the run (published to the clients by the gate)
	if o := c.Param("outage_ms"); o > 0 {
		s.outageEnd = Now() + uint64(o)*1000000
	}
	r.Start()
	if cancelMs > 0 {
		tm := time.NewTimer(time.Duration(cancelMs) * time.Millisecond)
		select {
		case <-s.workersDone:
			tm.Stop()
		case <-tm.C:
		}
		if !retryClosed(s.workersDone) {
			cancelledAt = Now()
			s.cancel()
		}
	}
	if c.Duration > 0 {
		// until the duration ends, or until every client has stopped (a
		// cancel ended them: the rest of the duration would be idle)
		end := r.TStart + uint64(c.Duration*1e9)
		if now := Now(); end > now {
			tm := time.NewTimer(time.Duration(end - now))
			select {
			case <-s.workersDone:
				tm.Stop()
			case <-tm.C:
			}
		}
		if !retryClosed(s.workersDone) {
			r.WaitDuration()
		}
		if cancelledAt == 0 && !retryClosed(s.workersDone) { // the run is over: end the backoffs in progress
			cancelledAt = Now()
			s.cancel()
		}
	}
	<-s.workersDone
	r.Join()

	calls, ok, exhausted, cancelled, attempts := s.calls, s.ok, s.exhausted, s.cancelled, s.attempts
	if s.seed && s.wastedCalls > 0 {
		r.Fail("%d calls slept after their final attempt: %.3f ms of backoff wasted before returning the "+
			"error (the seed's loop backs off once more after attempt %d of %d)", s.wastedCalls,
			float64(s.wastedNs)/1e6, s.maxAttempts, s.maxAttempts)
	}
	if s.badSleeps > 0 {
		r.Fail("%d calls slept a wrong number of times (a finished call sleeps attempts - 1 times)", s.badSleeps)
	}
	if calls != ok+exhausted+cancelled {
		r.Fail("calls %d != successes %d + exhausted %d + cancelled %d", calls, ok, exhausted, cancelled)
	}
	if c.Duration <= 0 && cancelledAt == 0 && (calls != uint64(c.Items) || cancelled > 0) {
		r.Fail("%d calls finished (%d cancelled), expected --items %d with no cancel", calls, cancelled, c.Items)
	}
	if cancelledAt == 0 && cancelled > 0 {
		r.Fail("%d calls cancelled, but nobody cancelled", cancelled)
	}
	if attempts != s.downstreamAttempts {
		r.Fail("attempts lost or counted twice: the clients made %d, the downstream saw %d", attempts,
			s.downstreamAttempts)
	}
	if s.badAttempts > 0 {
		r.Fail("%d calls made more than max_attempts %d, or gave up before it", s.badAttempts, s.maxAttempts)
	}
	if s.badPolicy > 0 {
		r.Fail("%d backoffs outside the policy (first: %d ns before attempt %d)", s.badPolicy, s.bpD, s.bpA+2)
	}
	if s.earlySleep > 0 {
		r.Fail("%d backoff sleeps returned OK before their time", s.earlySleep)
	}
	var cancelNs uint64
	if cancelledAt != 0 && s.lastExit > cancelledAt {
		cancelNs = s.lastExit - cancelledAt
	}
	if cancelNs > retryBound {
		r.Fail("cancellation took %.3f s to stop every client (bound 1 s): a backoff did not honour the ctx",
			float64(cancelNs)/1e9)
	}

	all := newRetryHist()
	for _, h := range success {
		all.merge(h)
	}
	if ok > 0 {
		r.Metric("attempts_per_success", float64(s.okAttempts)/float64(ok))
		r.Metric("success_p50_ns", float64(all.percentile(50)))
		r.Metric("success_p99_ns", float64(all.percentile(99)))
	}
	r.Metric("exhausted", float64(exhausted))
	r.Metric("sleeps", float64(s.sleeps))
	r.Metric("wasted_sleep_ns", float64(s.wastedNs))
	if cancelledAt != 0 {
		r.Metric("cancel_ns", float64(cancelNs))
	}
	r.Ops = calls
	return nil
}

// retryHist is the C's cp_hist_new(2, 1 hour) for the time to success:
// HdrHistogram's layout with 2 significant digits (S = 256 sub-buckets,
// H = 128), and cp_hist_percentile, so that success_p50_ns/p99_ns are the
// same figures as the C's.
type retryHist struct {
	counts          []uint64
	total, min, max uint64
	clamped         uint64
}

const (
	retryHistS    = 256
	retryHistMask = retryHistS - 1
	retryHistMag  = 7 // log2(H)
)

func retryHistBucket(v uint64) int {
	return (64 - bits.LeadingZeros64(v|retryHistMask)) - (retryHistMag + 1)
}

func retryHistIndex(v uint64) int {
	b := retryHistBucket(v)
	return ((b + 1) << retryHistMag) + int(v>>uint(b)) - (1 << retryHistMag)
}

func newRetryHist() *retryHist {
	n := (retryHistBucket(histHighest) + 2) << retryHistMag
	return &retryHist{counts: make([]uint64, n), min: math.MaxUint64}
}

func (h *retryHist) record(v uint64) {
	if v > histHighest {
		v = histHighest
		h.clamped++
	}
	h.counts[retryHistIndex(v)]++
	h.total++
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

func (h *retryHist) merge(o *retryHist) {
	for i, n := range o.counts {
		h.counts[i] += n
	}
	h.total += o.total
	h.clamped += o.clamped
	if o.total > 0 {
		if o.min < h.min {
			h.min = o.min
		}
		if o.max > h.max {
			h.max = o.max
		}
	}
}

// lowest value of slot i
func retryHistValue(i int) uint64 {
	b := i>>retryHistMag - 1
	sub := i&(1<<retryHistMag-1) + 1<<retryHistMag
	if b < 0 {
		sub -= 1 << retryHistMag
		b = 0
	}
	return uint64(sub) << uint(b)
}

func (h *retryHist) percentile(pct float64) uint64 {
	if h.total == 0 {
		return 0
	}
	if !(pct < 100) {
		return h.max
	}
	if pct < 0 {
		pct = 0
	}
	fc := pct / 100 * float64(h.total)
	fc *= 1 - 4*2.220446049250313e-16
	rank := uint64(math.Ceil(fc))
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var cum uint64
	for i, n := range h.counts {
		if cum += n; cum >= rank {
			lo := retryHistValue(i)
			b := retryHistBucket(lo)
			v := (lo>>uint(b))<<uint(b) + (uint64(1)<<uint(b) - 1) // highest equivalent
			if v < h.max {
				return v
			}
			return h.max
		}
	}
	return h.max
}

func init() {
	register(&Pattern{
		Name:     "retry",
		Params:   []string{"fail_pct", "max_attempts", "base_us", "cap_us", "jitter", "outage_ms", "cancel_after_ms"},
		Variants: []string{"default", "seed"},
		Metrics: []string{"attempts_per_success", "success_p50_ns", "success_p99_ns", "exhausted", "sleeps",
			"wasted_sleep_ns", "cancel_ns"},
		Run: retryRun,
	})
}
