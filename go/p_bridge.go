package main

// bridge: a channel of channels flattened into one stream; the twin of
// workloads/bridge.c (the seed catalogue's flows_bridge, the bridge of "Concurrency in
// Go"). --producers goroutines each make inner channels one after another,
// send each on the shared, unbuffered channel of channels, fill it with
// --set inner=K items and close it; one bridge goroutine takes the inner
// channels in turn and forwards every item onto the output stream, which a
// consumer reads. Producers and bridge are ctx-aware: the bridge's
//
//	for v := range orDone(done, stream) { select { case out <- v: case <-done: } }
//
// is a select on the inner channel and ctx.Done() (no orDone goroutine) and
// a select on the send and ctx.Done(), and before each send the bridge
// checks ctx.Err(), so that after a cancel at most the send already under
// way completes. Inner channels and the output have --capacity. --set
// cancel_at=N: the consumer cancels after N items, then drains the output
// until the bridge closes it (a context.WithTimeout of 1 s bounds it).
// --items (split over the producers) or --duration (producers stop between
// inner channels).
//
// Go collects inner channels itself; the twin keeps the C's bookkeeping of
// them all the same (a producer's channels the bridge has not released, at
// most 3 beyond the current one), for the same invariant and for the sweep
// of what is left in them after the run.
//
// One op: an item received by the consumer. Latency: the producer's send
// into the inner channel -> the consumer's receive end.
//
// Variant seed: the book's genVals producer, `chanStream <- stream` and
// `stream <- v` without a ctx case. The bridge exits on the cancel; the
// producer, whose only reader has left, blocks forever: the run reports
// "leaked N threads" and releases them. C closes the channel of channels
// and each producer's current inner channel (its sends then fail); in Go a
// send blocked on a channel that is closed panics, so the run receives from
// those channels instead (what it takes is counted as left in them) and a
// released flag stops each producer after the send under way.
//
// Invariants (as the C original): order within each inner channel, inner
// channels in order and complete, count and checksum (sent = received +
// dropped + left), nothing dropped or left without a cancel, count-mode
// totals, at most capacity + 1 items after the cancel, the output closed
// within 1 s of it, every goroutine exited within 1 s of it, at most 4
// unreleased inner channels per producer, every goroutine ended.

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"sync/atomic"
	"time"
)

const (
	bridgeExitBound = 1000000000 // ns: consumer's cancel -> every goroutine exited
	bridgeRing      = 4          // a producer's unreleased inner channels
)

type bridgeItem struct {
	p, k uint32
	j    uint64
	ts   uint64
}

// bridgeStream is what travels on the channel of channels: the inner
// channel, and whose j-th it is (for the bridge's release).
type bridgeStream struct {
	ch <-chan bridgeItem
	j  uint64
	p  uint32
}

func bridgeHash(p uint32, j uint64, k uint32) uint64 {
	return Mix(Mix(uint64(p)<<40|j) + uint64(k))
}

type bridgeHeld struct {
	ch chan bridgeItem
	j  uint64
}

type bridgeProducer struct {
	s        *bridgeState
	id       uint32
	share    uint64       // count mode: its items
	mu       sync.Mutex   // guards ring and cur (the run's release reads them)
	ring     []bridgeHeld // made and not yet released, oldest first
	cur      chan bridgeItem
	released uint64 // atomic: the bridge is done with its channels j < released
	sent     uint64
	sentSum  uint64
	overflow bool
}

type bridgeState struct {
	r         *Run
	producers int
	seed      bool
	inner     uint64
	cancelAt  uint64
	cap       int64
	prod      []*bridgeProducer
	streams   chan bridgeStream // the channel of channels
	out       chan bridgeItem
	ctx       context.Context
	cancel    context.CancelFunc
	allExited chan struct{} // closed by the last producer / the bridge to exit
	live      int32
	liveProd  int32
	freed     int32 // seed, after the leak: the run drains the channels
	// the bridge's, read after Join
	dropped, droppedSum uint64
	// the consumer's, read after Join
	got, gotSum, late                            uint64
	badItem, badChan, badIncomplete, badProducer uint64
	cancelledAt                                  uint64
	drainClosed                                  bool
	drainEnd                                     string
}

func (s *bridgeState) threadExit() {
	if atomic.AddInt32(&s.live, -1) == 0 {
		close(s.allExited)
	}
}

func (s *bridgeState) isReleased() bool { return atomic.LoadInt32(&s.freed) != 0 }

// chanSize: items in channel j of a producer: K, or in count mode the
// remainder.
func (s *bridgeState) chanSize(p *bridgeProducer, j uint64) uint64 {
	if s.r.Cfg.Duration > 0 {
		return s.inner
	}
	before := j * s.inner
	if p.share-before < s.inner {
		return p.share - before
	}
	return s.inner
}

// innerNew: a new inner channel for p (nil: too many unreleased, or the run
// is releasing the leaked producers); drops the released ones from the ring.
func (p *bridgeProducer) innerNew(j uint64) chan bridgeItem {
	rel := atomic.LoadUint64(&p.released)
	p.mu.Lock()
	defer p.mu.Unlock()
	keep := p.ring[:0]
	for _, h := range p.ring {
		if h.j >= rel {
			keep = append(keep, h)
		}
	}
	for i := len(keep); i < len(p.ring); i++ {
		p.ring[i] = bridgeHeld{}
	}
	p.ring = keep
	if len(p.ring) == bridgeRing {
		p.overflow = true
		return nil
	}
	if p.s.isReleased() {
		return nil
	}
	ch := make(chan bridgeItem, p.s.cap)
	p.ring = append(p.ring, bridgeHeld{ch, j})
	p.cur = ch
	return ch
}

// send into an inner channel or onto the channel of channels: ctx-aware,
// or (seed) the bare send.
func bridgeSend[T any](s *bridgeState, ch chan T, v T) bool {
	if s.seed {
		ch <- v // genVals: no done case
		return true
	}
	select {
	case ch <- v:
		return true
	case <-s.ctx.Done():
		return false
	}
}

func (p *bridgeProducer) run(t *Thread) {
	s := p.s
	r := s.r
	timed := r.Cfg.Duration > 0
	sample := r.Cfg.LatSample
	untilSample := int64(0)
	var n, sum uint64
	for j := uint64(0); ; j++ {
		// time-based: stop between inner channels; count mode: after the
		// channel that holds the last of its share
		if r.Stopped() || (!timed && j*s.inner >= p.share) {
			break
		}
		t.Phase("make inner")
		ch := p.innerNew(j)
		if ch == nil {
			break
		}
		t.Phase("send inner")
		if !bridgeSend(s, s.streams, bridgeStream{ch, j, p.id}) || s.seed && s.isReleased() {
			close(ch)
			break
		}
		size, k := s.chanSize(p, j), uint64(0)
		t.Phase("fill inner")
		for ; k < size; k++ {
			it := bridgeItem{p: p.id, k: uint32(k), j: j}
			if sample > 0 {
				if untilSample--; untilSample <= 0 {
					untilSample = sample
					it.ts = Now()
				}
			}
			if !bridgeSend(s, ch, it) {
				break
			}
			n++
			sum += bridgeHash(p.id, j, uint32(k))
			if s.seed && s.isReleased() {
				break // released after the leak (C: its next send fails)
			}
		}
		close(ch) // defer close(stream)
		if k < size {
			break
		}
	}
	p.sent, p.sentSum = n, sum
	t.Ops = n
	t.Phase("close")
	if atomic.AddInt32(&s.liveProd, -1) == 0 {
		close(s.streams)
	}
	t.Phase("done")
	s.threadExit()
}

func (s *bridgeState) bridge(t *Thread) {
	var n uint64
	done := s.ctx.Done()
	t.Phase("recv inner")
loop:
	for {
		var ref bridgeStream
		select {
		case v, ok := <-s.streams:
			if !ok {
				break loop
			}
			ref = v
		case <-done:
			break loop
		}
		t.Phase("forward")
	forward:
		for {
			var it bridgeItem
			select {
			case v, ok := <-ref.ch:
				if !ok {
					break forward
				}
				it = v
			case <-done:
				break loop // cancelled
			}
			if s.ctx.Err() == nil {
				select {
				case s.out <- it:
					n++
					continue
				case <-done:
				}
			}
			s.dropped++
			s.droppedSum += bridgeHash(it.p, it.j, it.k)
			break loop
		}
		// drained and closed: its producer may let it go
		atomic.StoreUint64(&s.prod[ref.p].released, ref.j+1)
		t.Phase("recv inner")
	}
	t.Ops = n
	t.Phase("close")
	close(s.out) // defer close(valStream)
	t.Phase("done")
	s.threadExit()
}

// the consumer's order check: per producer, the channel expected next; the
// channel being received
type bridgeOrder struct {
	next       []uint64
	curP       int64
	curJ, curN uint64
}

func (s *bridgeState) consume(o *bridgeOrder, it bridgeItem) {
	if it.p >= uint32(s.producers) {
		s.badProducer++
		return
	}
	if int64(it.p) != o.curP || it.j != o.curJ {
		// a new inner channel starts: the previous one was complete
		if o.curP >= 0 && o.curN != s.chanSize(s.prod[o.curP], o.curJ) {
			s.badIncomplete++
		}
		if it.j != o.next[it.p] {
			s.badChan++
		}
		if it.k != 0 {
			s.badItem++
		}
		o.next[it.p] = it.j + 1
		o.curP, o.curJ, o.curN = int64(it.p), it.j, 1
	} else {
		if uint64(it.k) != o.curN {
			s.badItem++
		}
		o.curN++
	}
	s.gotSum += bridgeHash(it.p, it.j, it.k)
	s.got++
}

func (s *bridgeState) consumer(t *Thread) {
	o := &bridgeOrder{next: make([]uint64, s.producers), curP: -1}
	t.Phase("recv")
	// No ctx: it reads until the bridge closes the output, or cancels.
	for it := range s.out {
		if it.ts != 0 {
			t.Hist.Record(Since(it.ts))
		}
		s.consume(o, it)
		if s.got == s.cancelAt {
			t.Phase("cancel, drain")
			s.cancelledAt = Now()
			s.cancel()
			// what still comes out after the cancel, for at most the bound
			bound, stop := context.WithTimeout(context.Background(), bridgeExitBound*time.Nanosecond)
			s.drainClosed, s.drainEnd = false, "timed out"
		drain:
			for {
				select {
				case it, ok := <-s.out:
					if !ok {
						s.drainClosed, s.drainEnd = true, "closed"
						break drain
					}
					s.consume(o, it)
					s.late++
				case <-bound.Done():
					break drain
				}
			}
			stop()
			break
		}
	}
	t.Ops = s.got
	t.Phase("done")
}

// release (seed, after the leak is counted): receive from the channel of
// channels and from each producer's current inner channel until the
// producers and the bridge have exited. Items taken are left in the
// channels; inner channels taken are in their producer's ring (swept after
// Join).
func (s *bridgeState) release(left, leftSum *uint64) {
	atomic.StoreInt32(&s.freed, 1)
	// a select over a number of channels known at run time: reflect.Select
	cases := []reflect.SelectCase{
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(s.allExited)},
		{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(s.streams)},
	}
	for _, p := range s.prod {
		p.mu.Lock() // after freed is set, a producer makes no new channel
		if p.cur != nil {
			cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(p.cur)})
		}
		p.mu.Unlock()
	}
	for {
		k, v, ok := reflect.Select(cases)
		switch {
		case k == 0:
			return
		case !ok:
			cases[k].Chan = reflect.Value{} // closed: ignored from now on
		case k == 1: // an inner channel: in its producer's ring
		default:
			it := v.Interface().(bridgeItem)
			*left++
			*leftSum += bridgeHash(it.p, it.j, it.k)
		}
	}
}

func bridgeRun(r *Run) error {
	c := r.Cfg
	s := &bridgeState{
		r:           r,
		producers:   int(c.Producers),
		inner:       uint64(c.Param("inner")),
		cancelAt:    uint64(c.Param("cancel_at")),
		cap:         c.Capacity,
		seed:        c.Variant == "seed",
		drainEnd:    "closed",
		drainClosed: true,
		allExited:   make(chan struct{}),
	}
	if c.Param("inner") < 1 || c.Param("inner") > 1<<32-1 {
		return errors.New("--set inner (items per inner channel) must be 1 .. 2^32-1")
	}
	nthreads := s.producers + 1 // all but the consumer
	items := uint64(c.Items)
	s.live, s.liveProd = int32(nthreads), int32(s.producers)
	s.prod = make([]*bridgeProducer, s.producers)
	for i := range s.prod {
		share := items / uint64(s.producers)
		if uint64(i) < items%uint64(s.producers) {
			share++
		}
		s.prod[i] = &bridgeProducer{s: s, id: uint32(i), share: share}
	}
	s.streams = make(chan bridgeStream) // make(chan (<-chan interface{}))
	s.out = make(chan bridgeItem, s.cap)
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()

	r.Spawn("consumer", s.consumer)
	r.Spawn("bridge", s.bridge)
	for _, p := range s.prod {
		r.Spawn("producer", p.run)
	}

	r.Start()
	r.WaitDuration()
	// Until producers and bridge have exited; after the consumer's cancel,
	// for at most bridgeExitBound.
	leaked := 0
	var left, leftSum uint64
	select {
	case <-s.allExited:
	case <-s.ctx.Done():
		bound := time.NewTimer(bridgeExitBound)
		select {
		case <-s.allExited:
		case <-bound.C:
			leaked = int(atomic.LoadInt32(&s.live))
			r.Fail("bridge leaked %d of %d producer/bridge threads: still blocked %.1f s after the consumer "+
				"cancelled (a send without a ctx case)", leaked, nthreads, float64(bridgeExitBound)/1e9)
			// counted; now release them so that they can be joined
			s.release(&left, &leftSum)
		}
		bound.Stop()
	}
	r.Join()

	// what the channels still hold: the output, and inner channels the
	// bridge did not finish (all closed by now)
	for it := range s.out {
		left++
		leftSum += bridgeHash(it.p, it.j, it.k)
	}
	var sent, sentSum uint64
	overflow, shortP := false, -1
	for i, p := range s.prod {
		for _, h := range p.ring {
			for it := range h.ch {
				left++
				leftSum += bridgeHash(it.p, it.j, it.k)
			}
		}
		sent += p.sent
		sentSum += p.sentSum
		overflow = overflow || p.overflow
		if p.sent != p.share && shortP < 0 {
			shortP = i
		}
	}
	cancelled := s.cancelledAt != 0
	var exitNs uint64
	if cancelled {
		exitNs = Diff(r.TEnd, s.cancelledAt)
	}
	if overflow {
		r.Fail("a producer held %d inner channels the bridge had not released (it takes them one at a time)",
			bridgeRing)
	}
	if s.badProducer > 0 {
		r.Fail("%d items from an unknown producer", s.badProducer)
	}
	if s.badItem > 0 {
		r.Fail("order within an inner channel broken %d times (items out of order, or of two channels "+
			"interleaved)", s.badItem)
	}
	if s.badChan > 0 {
		r.Fail("inner channels out of order %d times (a producer's channel skipped or repeated)", s.badChan)
	}
	if s.badIncomplete > 0 {
		r.Fail("%d inner channels cut short: the next one started before all their items came", s.badIncomplete)
	}
	if sent != s.got+s.dropped+left {
		r.Fail("count: producers sent %d, consumer received %d + dropped on cancel %d + left in channels %d",
			sent, s.got, s.dropped, left)
	} else if sentSum != s.gotSum+s.droppedSum+leftSum {
		r.Fail("checksum: producers' %016x != received + dropped + left %016x", sentSum,
			s.gotSum+s.droppedSum+leftSum)
	}
	if !cancelled && (s.dropped > 0 || left > 0) {
		r.Fail("no cancellation, yet %d dropped and %d left in channels", s.dropped, left)
	}
	if !cancelled && c.Duration <= 0 && !r.Stopped() && shortP >= 0 {
		r.Fail("count: producer %d sent %d items, its share is %d", shortP, s.prod[shortP].sent,
			s.prod[shortP].share)
	}
	if !cancelled && c.Duration <= 0 && !r.Stopped() && s.got != items {
		r.Fail("count: the consumer received %d items, expected %d", s.got, items)
	}
	if cancelled && s.late > uint64(s.cap)+1 {
		r.Fail("items after cancel: the consumer received %d items after it cancelled, more than the "+
			"output buffers (%d) + the one send under way", s.late, s.cap)
	}
	if cancelled && leaked == 0 && !s.drainClosed {
		r.Fail("the bridge did not close its output within %.1f s of the cancel (drain ended with %s)",
			float64(bridgeExitBound)/1e9, s.drainEnd)
	}
	if leaked == 0 && exitNs > bridgeExitBound {
		r.Fail("cancellation took %.3f s to stop every thread (bound %.1f s)", float64(exitNs)/1e9,
			float64(bridgeExitBound)/1e9)
	}
	if cancelled {
		r.Metric("cancel_to_exit_ns", float64(exitNs))
		r.Metric("late_items", float64(s.late))
	}
	r.Metric("leaked_threads", float64(leaked))
	r.Ops = s.got
	return nil
}

func init() {
	register(&Pattern{
		Name:     "bridge",
		Params:   []string{"inner", "cancel_at"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"cancel_to_exit_ns", "leaked_threads", "late_items"},
		Run:      bridgeRun,
	})
}
