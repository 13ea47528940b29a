package main

// bounded_parallelism: rounds of processItems over --set batch=B items with
// at most P in flight (--threads=P), the first error cancelling the rest;
// the twin of workloads/bounded_parallelism.c (seed 003's "Bounded
// Parallelism": a channel of P tokens, a goroutine per item, an error
// channel of capacity 1).
//
// Shape, as the C: a caller goroutine runs the rounds (count mode: until
// --items items were handed to processItems; time mode: until the run
// stops). processItems takes a token (--set sem=0: a chan struct{} of P
// tokens, as the seed; sem=1: a semaphore.Weighted of P) and starts a task
// per item. The task runs on one of 2P carrier goroutines, handed to it
// through a channel of --capacity: the C's model of the `go` statement,
// kept here so that the run has the C's goroutines (2P + 1, each with its
// latency histogram), --capacity keeps its meaning, and the tokens still
// bound the tasks alive to P, so a carrier is always free soon. A task is
// --work-ns of work and then the downstream's answer. Every --set
// fail_every=K-th round the item in the middle of the batch fails (once a
// sibling is in flight, so that the error always meets running work) and
// the downstream stops answering the calls in flight (an outage) until the
// caller ends it after processItems has returned; --set cancel_after_ms=T
// cancels the caller's context mid-run.
//
// The default variant is correct: a failing task records the first error
// (errgroup's rule: the first error wins, later ones, the siblings'
// cancellations included, are dropped) and then cancels the round's context
// (context.WithCancel of the caller's, as errgroup.WithContext); the
// dispatcher stops at a cancelled context (it checks ctx.Err after taking a
// token: a select with a token and Done both ready picks at random); tasks
// not yet started skip their item, tasks waiting on the downstream give up
// on the context; processItems waits for every task before it returns the
// first error (or the context's), and cancels the round's context even on
// success. --variant=seed is the seed's code: the dispatcher returns at once
// on an error (or on ctx.Done) from the token select, without wg.Wait, and
// process(item) takes no context: the tasks in flight outlive the call
// (leaked: the run fails naming how many), waiting on the downstream until
// the caller ends the outage; they are counted, then released and joined.
//
// One op: an item processed (its task ran to success). Latency: an item's
// time from the dispatcher asking for its token to its task's end.
//
// Metrics: in_flight_max, cancel_ns (median over failing rounds of first
// error -> processItems returned), leaked (tasks alive when processItems
// returned, summed over rounds), rounds.
//
// Invariants (as the C original): never more than P in flight; no leak when
// processItems returns; the first error wins; every item has exactly one
// outcome (done, failed, cancelled or never dispatched) and the counts add
// up; every token given back after each round; the first error stops its
// round within 1 s, and a cancel of the caller's context stops every
// goroutine within 1 s; every goroutine ended.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

const (
	bpNone uint32 = iota
	bpDone
	bpFailed
	bpCancelled
	bpTwice = 0xff // a second outcome: caught by the caller
)

func bpNoCancel() {}

// bpErrInjected is the failing item's error (C: E_INJECTED).
var bpErrInjected = errors.New("injected error")

type bpTask struct {
	rd     *bpRound
	idx    uint32
	tAsked uint64
}

// bpRound is one processItems call, reused round after round: the caller
// touches it only once every task of the previous round has finished.
type bpRound struct {
	ctx        context.Context // default: the round's (WithCancel of the caller's); seed: the caller's
	cancel     context.CancelFunc
	size       uint32
	failIdx    uint32 // == size: no failure this round
	withOutage bool   // the failure takes the downstream down with it
	firstErr   atomic.Pointer[error]
	outage     atomic.Bool   // the downstream stopped answering
	hanging    atomic.Int32  // tasks that found it down
	firstHang  chan struct{} // closed by the first of them
	dispDoneCh chan struct{} // closed when the dispatcher is done
	returned   atomic.Bool   // processItems has returned
	doneLate   atomic.Uint64 // items done after processItems returned
	tErr       atomic.Uint64 // when the first error was recorded
	outageOver chan struct{} // closed by the caller after processItems returned
	outcome    []atomic.Uint32
}

func (rd *bpRound) dispatchDone() {
	close(rd.dispDoneCh)
}

// recordErr: the first error wins.
func (rd *bpRound) recordErr(err error) { rd.firstErr.CompareAndSwap(nil, &err) }

func (rd *bpRound) err() error {
	if p := rd.firstErr.Load(); p != nil {
		return *p
	}
	return nil
}

// What the caller saw, round after round (caller-only until the join).
type bpOut struct {
	rounds, failingRounds, leaked, leakyRounds, done, failed, cancelled, undispatched uint64
	doneLate, badOutcome, badErr, badCount, slowCancelNs, drainTimeout                uint64
	badErrGot, badErrWant                                                             error
	countMsg                                                                          string
	cancelNs                                                                          Hist
}

type bp struct {
	r         *Run
	seed      bool
	useSem    bool
	P         int64
	goCh      chan bpTask   // the `go` statement: tasks to the carriers
	tokens    chan struct{} // sem=0: the seed's `sem <- struct{}{}`
	sem       *semaphore.Weighted
	errCh     chan error // seed: the error channel of capacity 1
	wg        sync.WaitGroup
	ctx       context.Context // the caller's: Background unless cancel_after_ms
	withCtx   bool
	inFlight  atomic.Int64
	inFlMax   atomic.Int64
	alive     atomic.Int64 // tasks dispatched and not yet finished
	overP     atomic.Uint64
	badToken  atomic.Uint64
	out       bpOut
	sample    int64
	workNs    int64
	batch     uint64
	failEvery uint64
}

// ---- the tokens: a channel of P or a semaphore.Weighted ----

func (b *bp) tokenTake(ctx context.Context) error {
	if b.useSem {
		return b.sem.Acquire(ctx, 1)
	}
	select {
	case b.tokens <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *bp) tokenGive() {
	if b.useSem {
		b.sem.Release(1)
		return
	}
	select {
	case <-b.tokens:
	default:
		b.badToken.Add(1)
	}
}

// ---- a task (the goroutine's body), on a carrier ----

func (b *bp) runTask(t *Thread, tk bpTask) {
	rd := tk.rd
	n := b.inFlight.Add(1)
	if n > b.P {
		b.overP.Add(1)
	}
	for m := b.inFlMax.Load(); n > m && !b.inFlMax.CompareAndSwap(m, n); m = b.inFlMax.Load() {
	}

	var out uint32
	if !b.seed && rd.ctx.Err() != nil {
		out = bpCancelled // started after the cancel: skip
		rd.recordErr(rd.ctx.Err())
	} else {
		t.Phase("work")
		if b.workNs > 0 {
			Work(b.workNs)
		}
		switch {
		case tk.idx == rd.failIdx:
			out = bpFailed
			if rd.withOutage {
				// the downstream goes down with this call, whose error comes
				// once a sibling hangs on it (or none can come any more): the
				// error always meets work in flight
				rd.outage.Store(true)
				t.Phase("fail: wait for a sibling to hang")
				select { // C polls these every 20 us
				case <-rd.firstHang:
				case <-rd.dispDoneCh:
				case <-rd.ctx.Done():
				}
			}
			rd.tErr.Store(Now())
			if b.seed {
				select { // select { case errCh <- err: default: }
				case b.errCh <- bpErrInjected:
				default:
				}
			} else {
				rd.recordErr(bpErrInjected) // first, then cancel: the first error wins
				rd.cancel()
			}
		case rd.outage.Load():
			// the downstream hangs: the default gives up on the round's
			// context, the seed's process(item) has none and waits for the
			// caller; a late answer after 2 s at most, so that nothing hangs
			t.Phase("downstream outage")
			if rd.hanging.Add(1) == 1 {
				close(rd.firstHang)
			}
			parent := rd.ctx
			if b.seed {
				parent = context.Background()
			}
			w, cancel := context.WithTimeout(parent, 2*time.Second)
			var err error
			select {
			case <-rd.outageOver:
			case <-w.Done():
				if err = w.Err(); err == context.DeadlineExceeded {
					err = nil // the downstream's late answer
				}
			}
			cancel()
			out = bpDone
			if err != nil {
				out = bpCancelled
				rd.recordErr(err)
			}
		default:
			out = bpDone
		}
	}
	if tk.tAsked != 0 {
		t.Hist.Record(Since(tk.tAsked))
	}
	if !rd.outcome[tk.idx].CompareAndSwap(bpNone, out) {
		rd.outcome[tk.idx].Store(bpTwice)
	}
	if out == bpDone {
		t.Ops++
		if rd.returned.Load() {
			rd.doneLate.Add(1)
		}
	}
	b.inFlight.Add(-1) // before the token: in flight <= tokens held
	b.tokenGive()
	b.alive.Add(-1)
	b.wg.Done()
}

func (b *bp) carrier(t *Thread) {
	t.Phase("idle")
	for tk := range b.goCh { // closed by the caller at the end
		b.runTask(t, tk)
		t.Phase("idle")
	}
	t.Phase("done")
}

// ---- processItems ----

func (b *bp) goTask(rd *bpRound, i uint32, asked uint64) {
	b.wg.Add(1)
	b.alive.Add(1)
	b.goCh <- bpTask{rd, i, asked} // a carrier is always coming: tasks alive <= P < 2P carriers
}

func (b *bp) asked(i uint32) uint64 {
	if b.sample > 0 && int64(i)%b.sample == 0 {
		return Now()
	}
	return 0
}

// processItems, the correct version: the first error, or the ctx's, or nil.
func (b *bp) processItems(t *Thread, rd *bpRound) (uint32, error) {
	var i uint32
	for ; i < rd.size; i++ {
		asked := b.asked(i)
		t.Phase("take token")
		if b.tokenTake(rd.ctx) != nil {
			break
		}
		if rd.ctx.Err() != nil { // both were ready and the token won: stop anyway
			b.tokenGive()
			break
		}
		b.goTask(rd, i, asked)
	}
	rd.dispatchDone()
	t.Phase("wg wait")
	b.wg.Wait()
	err := rd.err()
	if err == nil {
		err = rd.ctx.Err()
	}
	return i, err
}

// processItems, the seed's version (seed 003): an early return from the
// token select on an error or on ctx.Done, without waiting.
func (b *bp) processItemsSeed(t *Thread, rd *bpRound) (uint32, error) {
	for i := uint32(0); i < rd.size; i++ {
		asked := b.asked(i)
		t.Phase("select token/err")
		select {
		case b.tokens <- struct{}{}:
		case <-rd.ctx.Done():
			rd.dispatchDone()
			return i, rd.ctx.Err() // return ctx.Err(): no wg.Wait
		case err := <-b.errCh:
			rd.dispatchDone()
			return i, err // return err: no wg.Wait
		}
		b.goTask(rd, i, asked)
	}
	rd.dispatchDone()
	t.Phase("wg wait")
	b.wg.Wait()
	select {
	case err := <-b.errCh:
		return rd.size, err
	default:
		return rd.size, nil
	}
}

// waitBounded is wg.Wait with a bound: false if it timed out (the helper
// goroutine then ends when the tasks do, before the carriers are joined).
func (b *bp) waitBounded(d time.Duration) bool {
	done := make(chan struct{})
	go func() {
		b.wg.Wait()
		close(done)
	}()
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-done:
		return true
	case <-tm.C:
		return false
	}
}

// ---- the caller: rounds, and the checks of each ----

func (b *bp) caller(t *Thread) {
	r := b.r
	o := &b.out
	n := uint64(r.Cfg.Items)
	rd := &bpRound{outcome: make([]atomic.Uint32, b.batch)}
	var offered uint64
	for r.More(offered, n) && b.ctx.Err() == nil {
		size := b.batch
		if r.Cfg.Duration <= 0 && n-offered < size {
			size = n - offered
		}
		offered += size
		o.rounds++
		failing := b.failEvery > 0 && o.rounds%b.failEvery == 0
		rd.size = uint32(size)
		rd.failIdx = uint32(size)
		if failing {
			rd.failIdx = uint32(size / 2)
		}
		rd.firstErr.Store(nil)
		rd.outage.Store(false)
		rd.hanging.Store(0)
		rd.firstHang = make(chan struct{})
		rd.dispDoneCh = make(chan struct{})
		// an outage only where the dispatcher cannot finish the batch with
		// the tokens the hanging tasks leave (>= 2P + 1 items after the
		// failing one): the seed's select then always meets the error
		rd.withOutage = failing && b.P > 1 && size-uint64(rd.failIdx)-1 >= 2*uint64(b.P)+1
		rd.tErr.Store(0)
		rd.returned.Store(false)
		rd.doneLate.Store(0)
		for i := uint64(0); i < size; i++ {
			rd.outcome[i].Store(bpNone)
		}
		rd.outageOver = make(chan struct{})
		if b.seed {
			rd.ctx, rd.cancel = b.ctx, bpNoCancel
		} else {
			rd.ctx, rd.cancel = context.WithCancel(b.ctx)
		}

		var err error
		var dispatched uint32
		if b.seed {
			dispatched, err = b.processItemsSeed(t, rd)
		} else {
			dispatched, err = b.processItems(t, rd)
		}
		returned := Now()
		rd.returned.Store(true)
		alive := uint64(b.alive.Load()) // goroutines that outlived the call
		rd.cancel()                     // errgroup: Wait cancels even on success

		// release whatever the round left behind, then let it finish
		t.Phase("end outage, drain")
		close(rd.outageOver)
		if !b.waitBounded(5 * time.Second) {
			o.drainTimeout++
		}
		o.leaked += alive
		if alive > 0 {
			o.leakyRounds++
		}
		o.doneLate += rd.doneLate.Load()
		if tErr := rd.tErr.Load(); tErr != 0 && alive == 0 {
			d := Diff(returned, tErr)
			o.cancelNs.Record(d)
			if d > 1e9 && d > o.slowCancelNs {
				o.slowCancelNs = d
			}
		}

		// one outcome per item; the counts add up
		var cnt [4]uint64
		for i := uint64(0); i < size; i++ {
			v := rd.outcome[i].Load()
			switch {
			case v > bpCancelled:
				o.badOutcome++
			case v == bpNone && i < uint64(dispatched):
				o.badOutcome++ // dispatched, never finished
			case v != bpNone && i >= uint64(dispatched):
				o.badOutcome++ // ran without being dispatched
			default:
				cnt[v]++
			}
		}
		o.done += cnt[bpDone]
		o.failed += cnt[bpFailed]
		o.cancelled += cnt[bpCancelled]
		o.undispatched += size - uint64(dispatched)
		cancelledOutside := b.ctx.Err() != nil
		bad := ""
		switch {
		case cnt[bpNone] != size-uint64(dispatched):
			bad = "outcomes + not dispatched != batch"
		case !failing && !cancelledOutside && cnt[bpDone] != size:
			bad = "a round without error left items not done"
		case failing && cnt[bpFailed] != 1 && !(cancelledOutside && cnt[bpFailed] == 0):
			bad = "a failing round did not fail exactly its one item"
		case !failing && cnt[bpFailed] != 0:
			bad = "an item failed in a round without error"
		}
		if bad != "" {
			if o.badCount == 0 {
				o.countMsg = fmt.Sprintf("%s (round %d: batch %d, dispatched %d, done %d, failed %d, cancelled %d)",
					bad, o.rounds, size, dispatched, cnt[bpDone], cnt[bpFailed], cnt[bpCancelled])
			}
			o.badCount++
		}
		// the first error wins
		var want error
		if cnt[bpFailed] > 0 {
			want = bpErrInjected
		}
		ok := err == want || (cancelledOutside && (err == context.Canceled || err == nil || err == bpErrInjected))
		if !ok {
			if o.badErr == 0 {
				o.badErrGot, o.badErrWant = err, want
			}
			o.badErr++
		}
		if failing {
			o.failingRounds++
		}

		// every token back
		if b.useSem {
			if b.sem.TryAcquire(b.P) {
				b.sem.Release(b.P)
			} else {
				b.badToken.Add(1)
			}
		} else if len(b.tokens) != 0 {
			b.badToken.Add(1)
			for len(b.tokens) > 0 {
				<-b.tokens
			}
		}
		for len(b.errCh) > 0 {
			<-b.errCh
		}
		if o.drainTimeout > 0 {
			break
		}
	}
	t.Phase("close go")
	close(b.goCh)
	t.Phase("done")
}

func bpErrName(err error) string {
	if err == nil {
		return "nil"
	}
	return fmt.Sprintf("%q", err.Error())
}

func bpRun(r *Run) error {
	c := r.Cfg
	b := &bp{
		r:         r,
		seed:      c.Variant == "seed",
		P:         c.Threads,
		sample:    c.LatSample,
		workNs:    c.WorkNs,
		batch:     uint64(c.Param("batch")),
		failEvery: uint64(c.Param("fail_every")),
		ctx:       context.Background(),
	}
	if b.batch < 1 || b.batch > 1000000 {
		return fmt.Errorf("--set batch=%d: expected 1..1000000", b.batch)
	}
	b.useSem = !b.seed && c.Param("sem") != 0
	cancelMs := c.Param("cancel_after_ms")
	b.goCh = make(chan bpTask, c.Capacity)
	b.tokens = make(chan struct{}, b.P)
	b.errCh = make(chan error, 1)
	b.sem = semaphore.NewWeighted(b.P)
	var cancelCaller context.CancelFunc = func() {}
	if cancelMs > 0 {
		b.ctx, cancelCaller = context.WithCancel(context.Background())
		b.withCtx = true
	}
	defer cancelCaller()
	o := &b.out

	for i := int64(0); i < 2*b.P; i++ {
		r.Spawn("carrier", b.carrier)
	}
	r.Spawn("caller", b.caller)

	var cancelledAt uint64
	r.Start()
	if cancelMs > 0 {
		SleepNs(uint64(cancelMs) * 1000000)
		cancelledAt = Now()
		cancelCaller()
	}
	r.WaitDuration()
	r.Join()

	if o.leaked > 0 {
		r.Fail("processItems returned with goroutines still running: leaked %d goroutines in %d of %d rounds "+
			"(%d of their items done after it returned)", o.leaked, o.leakyRounds, o.rounds, o.doneLate)
	}
	if n := b.overP.Load(); n > 0 {
		r.Fail("more than P=%d tasks in flight (%d times, at most %d)", b.P, n, b.inFlMax.Load())
	}
	if o.badOutcome > 0 {
		r.Fail("%d items with no outcome, two outcomes, or run without dispatch", o.badOutcome)
	}
	if o.badCount > 0 {
		r.Fail("%s (%d rounds)", o.countMsg, o.badCount)
	} else if o.countMsg != "" {
		r.Fail("caller: %s", o.countMsg)
	}
	if o.badErr > 0 {
		r.Fail("first error does not win: a round returned %s, expected %s (%d rounds)", bpErrName(o.badErrGot),
			bpErrName(o.badErrWant), o.badErr)
	}
	if n := b.badToken.Load(); n > 0 {
		r.Fail("tokens not all given back after a round (%d times)", n)
	}
	if o.drainTimeout > 0 {
		r.Fail("a round's tasks did not finish within 5 s of the outage's end")
	}
	if o.slowCancelNs > 0 {
		r.Fail("the first error took %.3f s to stop its round (bound 1 s)", float64(o.slowCancelNs)/1e9)
	}
	if cancelledAt != 0 && r.TEnd > cancelledAt && r.TEnd-cancelledAt > 1e9 {
		r.Fail("cancellation took %.3f s to stop every goroutine (bound 1 s)", float64(r.TEnd-cancelledAt)/1e9)
	}
	if !b.withCtx && c.Duration <= 0 && o.done+o.failed+o.cancelled+o.undispatched != uint64(c.Items) {
		r.Fail("items: done %d + failed %d + cancelled %d + not dispatched %d != --items %d", o.done, o.failed,
			o.cancelled, o.undispatched, c.Items)
	}

	r.Metric("in_flight_max", float64(b.inFlMax.Load()))
	if o.cancelNs.Count() > 0 {
		r.Metric("cancel_ns", float64(o.cancelNs.Percentile(50)))
	}
	r.Metric("leaked", float64(o.leaked))
	r.Metric("rounds", float64(o.rounds))
	r.Ops = o.done
	return nil
}

func init() {
	register(&Pattern{
		Name:     "bounded_parallelism",
		Params:   []string{"batch", "fail_every", "sem", "cancel_after_ms"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"in_flight_max", "cancel_ns", "leaked", "rounds"},
		Run:      bpRun,
	})
}
