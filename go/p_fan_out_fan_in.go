package main

// fan_out_fan_in: one source feeds an input channel, N workers read it
// (fan-out) and their results merge into one output channel (fan-in) that a
// sink reads; the twin of workloads/fan_out_fan_in.c (the seed catalogue's
// flows_fan_out_fan_in; seed 003's fanOut/fanIn/processJobs).
// --threads=N workers; --set merge=M: 0 forward (a channel per worker and a
// forwarder goroutine per worker copying it into the merged channel, closed
// by a closer after wg.Wait()), 1 shared (the workers send into one channel,
// closed by the closer once every worker is done). Every send and receive is
//
//	select { case out <- v: case <-ctx.Done(): return }
//
// Channels of --capacity; --items or --duration; --work-ns per item in a
// worker; --set cancel_at=K: the sink cancels the ctx after K results and
// leaves (0: never).
//
// One op: one result received by the sink. Latency: the source's send start
// -> the sink's receive end.
//
// Variant seed: seed 002's fanOut/fanIn (`for val := range input { out <-
// process(val) }`, `for val := range c { out <- val }`, `in <- job`): no ctx
// case. Once the sink cancels and leaves, the source, workers and forwarders
// block in their sends (and the closer in wg.Wait) as soon as what is left
// exceeds what the channels buffer: the run reports "leaked N threads", then
// releases them to join them. C closes every channel (a cp_chan send on a
// closed channel returns CP_CLOSED); in Go a blocked send on a channel that
// is closed panics, so the run releases them the Go way: it stands in for
// the reader that left, receiving from every channel (what it takes is
// counted as left in the channels), while a released flag stops the source
// after the send under way (C: that send fails).
//
// Invariants (as the C original): each item processed once (a bitmap of
// ids over what the sink received and what was left in the output
// channels), each result its item's, count and checksum (source = processed
// + left in the input; processed = received + dropped + left in outputs),
// nothing dropped or left without a cancel, count-mode total, every
// goroutine ended within 1 s of the sink's cancel, every goroutine ended.

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

const fofiExitBound = 1000000000 // ns: sink's cancel -> every goroutine exited

type fofiMsg struct{ id, v, ts uint64 }

func fofiProcess(id uint64) uint64 { return Mix(id ^ 0x5eedf00d) }

type fofi struct {
	r             *Run
	workers       int
	forward, seed bool
	cancelAt      uint64
	in, out       chan fofiMsg
	wout          []chan fofiMsg // merge=forward: worker i -> forwarder i
	ctx           context.Context
	cancel        context.CancelFunc
	wg            sync.WaitGroup // what the closer waits for: forwarders, or workers
	allExited     chan struct{}  // closed by the last goroutine but the sink to exit
	live          int32
	released      int32 // seed, after the leak: the run drains the channels
	processed     uint64
	dropped       uint64
	droppedSum    uint64
	// the source's, read after Join
	sent, sentSum uint64
	// the sink's (and, after Join, the run's sweep)
	seen                    []uint8
	got, gotSum             uint64
	dup, firstDup, badValue uint64
	cancelledAt             uint64
	sinkClosed              bool
}

func (f *fofi) threadExit() {
	if atomic.AddInt32(&f.live, -1) == 0 {
		close(f.allExited)
	}
}

// send is the ctx-aware send: false when the done case won. seed: the bare
// send, which cannot see the cancel.
func (f *fofi) send(ch chan<- fofiMsg, m fofiMsg) bool {
	if f.seed {
		ch <- m
		return true
	}
	select {
	case ch <- m:
		return true
	case <-f.ctx.Done():
		return false
	}
}

// recv: ok false when the channel is closed or the done case won.
func (f *fofi) recv(ch <-chan fofiMsg) (fofiMsg, bool) {
	if f.seed {
		m, ok := <-ch
		return m, ok
	}
	select {
	case m, ok := <-ch:
		return m, ok
	case <-f.ctx.Done():
		return fofiMsg{}, false
	}
}

func (f *fofi) drop(m fofiMsg) {
	atomic.AddUint64(&f.dropped, 1)
	atomic.AddUint64(&f.droppedSum, Mix(m.id))
}

// fofiMarkSeen: whether id was seen before (the bitmap grows as needed).
func (f *fofi) markSeen(id uint64) bool {
	b := int(id >> 3)
	if b >= len(f.seen) {
		n := len(f.seen)
		if n == 0 {
			n = 4096
		}
		for n <= b {
			n *= 2
		}
		s := make([]uint8, n)
		copy(s, f.seen)
		f.seen = s
	}
	bit := uint8(1) << (id & 7)
	was := f.seen[b]&bit != 0
	f.seen[b] |= bit
	return was
}

// checkResult: a result reached the sink or was found in an output channel.
func (f *fofi) checkResult(m fofiMsg) {
	if f.markSeen(m.id) {
		if f.dup == 0 {
			f.firstDup = m.id
		}
		f.dup++
	}
	if m.v != fofiProcess(m.id) {
		f.badValue++
	}
}

func (f *fofi) source(t *Thread) {
	r := f.r
	sample := r.Cfg.LatSample
	n := uint64(r.Cfg.Items)
	untilSample := int64(0)
	var id, sum uint64
	t.Phase("send")
	for ; r.More(id, n); id++ {
		if f.seed && atomic.LoadInt32(&f.released) != 0 {
			break // released after the leak (C: its send on the closed channel fails)
		}
		m := fofiMsg{id: id}
		if sample > 0 {
			if untilSample--; untilSample <= 0 {
				untilSample = sample
				m.ts = Now()
			}
		}
		if !f.send(f.in, m) {
			break // cancelled: not sent
		}
		sum += Mix(id)
	}
	f.sent, f.sentSum = id, sum
	t.Ops = id
	t.Phase("close")
	close(f.in)
	t.Phase("done")
	f.threadExit()
}

func (f *fofi) worker(t *Thread, i int) {
	work := f.r.Cfg.WorkNs
	out := f.out
	if f.forward {
		out = f.wout[i]
	}
	var n uint64
	t.Phase("recv")
	for {
		m, ok := f.recv(f.in)
		if !ok {
			break
		}
		if work > 0 {
			Work(work)
		}
		m.v = fofiProcess(m.id)
		n++
		t.Phase("send")
		if !f.send(out, m) {
			f.drop(m)
			break
		}
		t.Phase("recv")
	}
	atomic.AddUint64(&f.processed, n)
	t.Ops = n
	t.Phase("close")
	if f.forward {
		close(out) // defer close(out) of its own channel
	} else {
		f.wg.Done()
	}
	t.Phase("done")
	f.threadExit()
}

func (f *fofi) forwarder(t *Thread, i int) {
	var n uint64
	t.Phase("recv")
	for {
		m, ok := f.recv(f.wout[i])
		if !ok {
			break
		}
		t.Phase("send")
		if !f.send(f.out, m) {
			f.drop(m)
			break
		}
		n++
		t.Phase("recv")
	}
	t.Ops = n
	t.Phase("done")
	f.wg.Done()
	f.threadExit()
}

func (f *fofi) closer(t *Thread) {
	t.Phase("wg wait")
	f.wg.Wait()
	t.Phase("close")
	close(f.out)
	t.Phase("done")
	f.threadExit()
}

func (f *fofi) sink(t *Thread) {
	var got, sum uint64
	t.Phase("recv")
	// No ctx: the sink reads until the closer closes the merged channel, or
	// cancels the ctx itself and leaves.
	closed := true
	for m := range f.out {
		if m.ts != 0 {
			t.Hist.Record(Since(m.ts))
		}
		f.checkResult(m)
		sum += Mix(m.id)
		if got++; got == f.cancelAt {
			t.Phase("cancel")
			f.cancelledAt = Now()
			f.cancel()
			closed = false
			break
		}
	}
	f.sinkClosed = closed
	f.got, f.gotSum = got, sum
	t.Ops = got
	t.Phase("done")
}

// release (seed, after the leak is counted): receive from every channel
// until every goroutine but the sink has exited. What it takes from the
// input is unprocessed (left in the input), from the others results (left
// in the output channels, checked after Join with the run's own sweep).
func (f *fofi) release(leftIn, leftSum *uint64, results *[]fofiMsg) {
	atomic.StoreInt32(&f.released, 1)
	// a select over a number of channels known at run time: reflect.Select
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(f.allExited)},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(f.in)},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(f.out)},
	}
	for _, ch := range f.wout {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(ch)})
	}
	for {
		k, v, ok := reflect.Select(cases)
		switch {
		case k == 0:
			return
		case !ok:
			cases[k].Chan = reflect.Value{} // closed: ignored from now on
		case k == 1:
			m := v.Interface().(fofiMsg)
			*leftIn++
			*leftSum += Mix(m.id)
		default:
			*results = append(*results, v.Interface().(fofiMsg))
		}
	}
}

func fofiRun(r *Run) error {
	c := r.Cfg
	f := &fofi{
		r:         r,
		workers:   int(c.Threads),
		forward:   c.Param("merge") == 0,
		cancelAt:  uint64(c.Param("cancel_at")),
		seed:      c.Variant == "seed",
		allExited: make(chan struct{}),
	}
	if m := c.Param("merge"); m < 0 || m > 1 {
		return errors.New("--set merge must be 0 (forward: a forwarder per worker) or 1 (shared)")
	}
	nthreads := 1 + f.workers + 1 // all but the sink
	if f.forward {
		nthreads += f.workers
	}
	f.live = int32(nthreads)
	f.in = make(chan fofiMsg, c.Capacity)
	f.out = make(chan fofiMsg, c.Capacity)
	if f.forward {
		f.wout = make([]chan fofiMsg, f.workers)
		for i := range f.wout {
			f.wout[i] = make(chan fofiMsg, c.Capacity)
		}
	}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	defer f.cancel()

	f.wg.Add(f.workers)
	r.Spawn("sink", f.sink)
	r.Spawn("closer", f.closer)
	for i := 0; i < f.workers; i++ {
		i := i
		if f.forward {
			r.Spawn("forwarder", func(t *Thread) { f.forwarder(t, i) })
		}
		r.Spawn("worker", func(t *Thread) { f.worker(t, i) })
	}
	r.Spawn("source", f.source)

	r.Start()
	r.WaitDuration()
	// Until everyone but the sink has exited; after the sink's cancel, for
	// at most fofiExitBound.
	leaked := 0
	var leftIn, leftOut, leftSum uint64
	var results []fofiMsg
	select {
	case <-f.allExited:
	case <-f.ctx.Done():
		bound := time.NewTimer(fofiExitBound)
		select {
		case <-f.allExited:
		case <-bound.C:
			leaked = int(atomic.LoadInt32(&f.live))
			r.Fail("fan_out_fan_in leaked %d of %d threads: still blocked %.1f s after the sink cancelled "+
				"(a send without a ctx case)", leaked, nthreads, float64(fofiExitBound)/1e9)
			// counted; now release them so that they can be joined
			f.release(&leftIn, &leftSum, &results)
		}
		bound.Stop()
	}
	r.Join()

	// what the channels still hold: unprocessed in `in`, results elsewhere
	for m := range f.in { // closed by the source
		leftIn++
		leftSum += Mix(m.id)
	}
	for _, ch := range f.wout { // closed by their workers
		for m := range ch {
			results = append(results, m)
		}
	}
	for m := range f.out { // closed by the closer
		results = append(results, m)
	}
	for _, m := range results {
		f.checkResult(m)
		leftOut++
		leftSum += Mix(m.id)
	}
	processed, dropped, droppedSum := f.processed, f.dropped, f.droppedSum
	cancelled := f.cancelledAt != 0
	var exitNs uint64
	if cancelled {
		exitNs = Diff(r.TEnd, f.cancelledAt)
	}
	if f.dup > 0 {
		r.Fail("item processed twice: %d duplicate results (first id %d)", f.dup, f.firstDup)
	}
	if f.badValue > 0 {
		r.Fail("%d results do not match their item (value != process(id))", f.badValue)
	}
	if processed != f.got+dropped+leftOut {
		r.Fail("count: workers processed %d, sink received %d + dropped on cancel %d + left in output "+
			"channels %d", processed, f.got, dropped, leftOut)
	}
	if f.sent != processed+leftIn {
		r.Fail("count: the source sent %d, workers processed %d + left in the input channel %d",
			f.sent, processed, leftIn)
	} else if f.sentSum != f.gotSum+droppedSum+leftSum {
		r.Fail("checksum: the source's %016x != sink's + dropped + left %016x", f.sentSum,
			f.gotSum+droppedSum+leftSum)
	}
	if !cancelled && (dropped > 0 || leftIn > 0 || leftOut > 0 || !f.sinkClosed) {
		end := "closed"
		if !f.sinkClosed {
			end = "ok"
		}
		r.Fail("no cancellation, yet %d dropped, %d + %d left in channels, sink ended with %s",
			dropped, leftIn, leftOut, end)
	}
	if !cancelled && c.Duration <= 0 && !r.Stopped() && f.got != uint64(c.Items) {
		r.Fail("count: the sink received %d results, expected %d", f.got, c.Items)
	}
	if leaked == 0 && exitNs > fofiExitBound {
		r.Fail("cancellation took %.3f s to stop every thread (bound %.1f s)", float64(exitNs)/1e9,
			float64(fofiExitBound)/1e9)
	}
	if cancelled {
		r.Metric("cancel_to_exit_ns", float64(exitNs))
	}
	r.Metric("leaked_threads", float64(leaked))
	r.Ops = f.got
	return nil
}

func init() {
	register(&Pattern{
		Name:     "fan_out_fan_in",
		Params:   []string{"merge", "cancel_at"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"cancel_to_exit_ns", "leaked_threads"},
		Run:      fofiRun,
	})
}
