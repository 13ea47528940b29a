package main

// generator: the twin of workloads/generator.c (seed 000's flows_generator).
// --threads=G independent generator/consumer pairs, each with its own
// channel of --capacity (default 0: unbuffered) and its own ctx:
//
//	go func() { defer close(out); for v := start; ; v += step {
//	    select { case out <- v: case <-ctx.Done(): return } } }()
//
// The consumer takes its share of --items (or runs until --duration ends),
// then cancels the generator's ctx and leaves. One op: one item received by
// a consumer; latency: the generator's send start -> the consumer's receive
// end (1 in LatSample). Parameters: start, step. Metrics: cancel_to_exit_ns,
// leaked_threads.
//
// Variant seed: the playbooks' generator, `out <- v` with no ctx case, so
// once the consumer has left the generator blocks in its send forever. The
// run reports "leaked N threads", then releases it. The C closes the channel
// (its blocked send returns CP_CLOSED); a Go send on a closed channel
// panics, and a close concurrent with a send is a data race, so here the
// release is: a flag the seed generator reads after each send (harness
// machinery, not the seed's), and the run receives from the channel until
// the generator has exited, so that its blocked send completes, it sees the
// flag and returns (closing its channel, as its defer does). The items so
// received count as left in the channel, and are checked like them.
//
// Invariants (as the C): the exact sequence, in order, for the consumer and
// for what is left in the channel; count: sends == taken + left, and in
// count mode each consumer took its share; the generator exits within 1 s
// of its consumer's cancel; it closes its channel; every goroutine ended.

import (
	"context"
	"sync/atomic"
	"time"
)

const generatorExitBound = uint64(time.Second)

type generatorItem struct{ v, ts uint64 }

type generatorPair struct {
	ch       chan generatorItem
	ctx      context.Context
	cancel   context.CancelFunc
	exited   chan struct{} // closed by the generator as its last act
	released atomic.Bool   // seed: the run has counted the leak; the generator may stop
	start    uint64
	step     uint64
	quota    uint64
	gen      *Thread
	// the generator's, read after Join
	sent uint64
	// the consumer's, read after its cancel
	taken, cancelledAt uint64
	recvClosed         bool // the channel closed under the consumer, before its cancel
	// sequence check (consumer, then the run over what is left)
	bad, badAt, badGot uint64
	left               uint64
}

// generatorLeft checks one item left in the channel (after what the
// consumer took, the sequence continues) and counts it.
func (g *generatorPair) generatorLeft(it generatorItem) {
	k := g.taken + g.left
	if want := g.start + k*g.step; it.v != want {
		if g.bad == 0 {
			g.badAt, g.badGot = k, it.v
		}
		g.bad++
	}
	g.left++
}

func generatorRun(r *Run) error {
	c := r.Cfg
	seed := c.Variant == "seed"
	npairs := int(c.Threads)
	items := uint64(c.Items)
	p := make([]*generatorPair, npairs)
	for i := range p {
		ctx, cancel := context.WithCancel(context.Background())
		p[i] = &generatorPair{
			ch:     make(chan generatorItem, c.Capacity),
			ctx:    ctx,
			cancel: cancel,
			exited: make(chan struct{}),
			start:  uint64(c.Param("start")),
			step:   uint64(c.Param("step")),
			quota:  items / uint64(npairs),
		}
		if uint64(i) < items%uint64(npairs) {
			p[i].quota++
		}
	}
	for _, g := range p {
		g := g
		r.Spawn("consumer", func(t *Thread) {
			want, k := g.start, uint64(0)
			t.Phase("recv")
			for r.More(k, g.quota) {
				it, ok := <-g.ch
				if !ok {
					g.recvClosed = true // it closed before the cancel
					break
				}
				if it.ts != 0 {
					t.Hist.Record(Since(it.ts))
				}
				if it.v != want {
					if g.bad == 0 {
						g.badAt, g.badGot = k, it.v
					}
					g.bad++
				}
				want += g.step
				k++
			}
			g.taken = k
			t.Ops = k
			t.Phase("cancel")
			g.cancelledAt = Now()
			g.cancel()
			t.Phase("done")
		})
		g.gen = r.Spawn("generator", func(t *Thread) {
			sample := c.LatSample
			untilSample := int64(0)
			v, n := g.start, uint64(0)
			t.Phase("send")
		loop:
			for ; ; n, v = n+1, v+g.step {
				it := generatorItem{v: v}
				if sample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = sample
						it.ts = Now()
					}
				}
				if seed {
					g.ch <- it // the pitfall: no ctx case
					if g.released.Load() {
						n++ // (the harness's release, not the seed's)
						break
					}
					continue
				}
				select {
				case g.ch <- it:
				case <-g.ctx.Done():
					break loop
				}
			}
			g.sent = n
			t.Ops = n
			t.Phase("close")
			close(g.ch) // defer close(out)
			t.Phase("done")
			close(g.exited)
		})
	}

	r.Start()
	r.WaitDuration()
	// Every consumer cancels (count mode: after its share; time-based: at
	// the stop); then each generator has 1 s to exit, from when the last
	// cancel was seen.
	for _, g := range p {
		<-g.ctx.Done()
	}
	bound, cancelBound := context.WithTimeout(context.Background(), time.Duration(generatorExitBound))
	leaked := 0
	for _, g := range p {
		select {
		case <-g.exited:
			continue
		default:
		}
		select {
		case <-g.exited:
		case <-bound.Done():
			leaked++
		}
	}
	cancelBound()
	if leaked > 0 {
		r.Fail("generator leaked %d of %d threads: still blocked in send %.1f s after their consumer "+
			"cancelled (a send without a ctx case)", leaked, npairs, float64(generatorExitBound)/1e9)
		// counted; now release them so that they can be joined: the
		// blocked send completes into this receive, the generator sees
		// the flag and returns
		for _, g := range p {
			g.released.Store(true)
			for done := false; !done; {
				select {
				case it, ok := <-g.ch:
					if ok {
						g.generatorLeft(it)
					}
				case <-g.exited:
					done = true
				}
			}
		}
	}
	r.Join()

	worst, taken := uint64(0), uint64(0)
	for i, g := range p {
		if exitNs := Diff(g.gen.ended, g.cancelledAt); exitNs > worst {
			worst = exitNs
		}
		taken += g.taken
		// what the channel still holds continues the sequence, then closed
		closed := false
	drain:
		for {
			select {
			case it, ok := <-g.ch:
				if !ok {
					closed = true
					break drain
				}
				g.generatorLeft(it)
			default:
				break drain
			}
		}
		g.cancel()
		if g.bad > 0 {
			r.Fail("sequence broken: pair %d, item %d is %d, expected %d (%d wrong items)", i, g.badAt, g.badGot,
				g.start+g.badAt*g.step, g.bad)
		}
		if g.recvClosed {
			r.Fail("pair %d: the consumer's receive ended with closed before it cancelled", i)
		}
		if !closed {
			r.Fail("pair %d: the generator exited without closing its channel (drain ended with empty)", i)
		}
		if g.sent != g.taken+g.left {
			r.Fail("count: pair %d: generator sent %d items, consumer took %d + %d left in the channel", i,
				g.sent, g.taken, g.left)
		}
		if c.Duration <= 0 && !r.Stopped() && g.taken != g.quota {
			r.Fail("count: pair %d took %d items, expected %d", i, g.taken, g.quota)
		}
	}
	if leaked == 0 && worst > generatorExitBound {
		r.Fail("cancellation: a generator took %.3f s from its consumer's cancel to exit (bound %.1f s)",
			float64(worst)/1e9, float64(generatorExitBound)/1e9)
	}
	r.Metric("cancel_to_exit_ns", float64(worst))
	r.Metric("leaked_threads", float64(leaked))
	r.Ops = taken
	return nil
}

func init() {
	register(&Pattern{
		Name:     "generator",
		Params:   []string{"start", "step"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"cancel_to_exit_ns", "leaked_threads"},
		Run:      generatorRun,
	})
}
