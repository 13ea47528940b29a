package main

// ordone: a consumer that stops early must not leak the upstream. The
// or-done channel of the seed catalogue (flows_ordone), the twin of
// workloads/ordone.c: orDone(ctx, c) is a wrapper goroutine that forwards c
// to an unbuffered output, every receive and send a select with
// <-ctx.Done(), and closes the output when it leaves; the consumer ranges
// over the output, and when it has had enough it cancels the ctx and waits
// (a WaitGroup, bounded by 1 s) for everything upstream to be gone.
//
// Goroutines: --producers P generators (each its own sequence, sends
// selecting with ctx.Done(); --capacity is the upstream channel's), the
// wrapper, the consumer. The upstream never ends by itself unless --set
// src_items=M (then the producers send M items in all and the last one
// closes the upstream). The consumer takes --items items (or runs for
// --duration), then stops: it waits (at most 1 s) until the wrapper holds an
// item it is trying to hand over, cancels the ctx, and waits for the
// upstream.
//
// One op: an item received by the consumer. Latency: producer's send start
// -> consumer's receive. Metric: stop_to_joined_ns, the consumer's cancel ->
// every upstream goroutine returned.
//
// Variant seed: the wrapper's send `out <- v` without the
// `case <-ctx.Done()`: once the consumer has left it blocks forever. The run
// fails with "leaked N upstream threads" after 1 s, then releases the
// wrapper (its blocked send also watches an internal ctx, reap, that only
// the harness cancels) so that it ends.
//
// Invariants (as the C): sent = received + abandoned by the wrapper + left
// upstream (count and checksum of Mix(tag)); per-producer FIFO; count mode:
// the consumer got --items (or all M, and saw the close); every upstream
// goroutine returns within 1 s of the stop, and the wrapper closed its
// output; every goroutine ended.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

const (
	ordoneTagShift = 40
	ordoneBound    = time.Second
)

type ordoneItem struct{ tag, ts uint64 }

func ordoneRun(r *Run) error {
	cfg := r.Cfg
	P := int(cfg.Producers)
	seed := cfg.Variant == "seed"
	srcItems := cfg.Param("src_items")
	finite := srcItems > 0
	var per, extra uint64
	if finite {
		per, extra = uint64(srcItems)/uint64(P), uint64(srcItems)%uint64(P)
	}
	c := make(chan ordoneItem, cfg.Capacity)
	out := make(chan ordoneItem) // orDone's output is unbuffered
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reap, release := context.WithCancel(context.Background()) // only the harness cancels it
	defer release()
	var upstream sync.WaitGroup
	var liveUpstream, liveProducers int32 = int32(P + 1), int32(P)
	var offers uint64 // items the wrapper has begun to hand over
	var wrapperDone int32
	var sent, sentSum uint64
	var errs Errs
	var abandoned, abandonedSum uint64 // the wrapper's, read after Join
	var got, gotSum uint64             // the consumer's
	sawClosed := false
	upstreamExit := func() {
		atomic.AddInt32(&liveUpstream, -1)
		upstream.Done()
	}
	upstream.Add(P + 1)

	r.Spawn("consumer", func(t *Thread) {
		last := make([]int64, P)
		for i := range last {
			last[i] = -1
		}
		t.Phase("recv")
		for r.More(got, uint64(cfg.Items)) {
			v, ok := <-out // for v := range orDone(ctx, c)
			if !ok {
				sawClosed = true
				break
			}
			if v.ts != 0 {
				t.Hist.Record(Since(v.ts))
			}
			pid, seq := v.tag>>ordoneTagShift, int64(v.tag&(1<<ordoneTagShift-1))
			if pid >= uint64(P) {
				errs.note("item from an unknown producer", pid, 0)
			} else {
				if seq <= last[pid] {
					errs.note("per-producer FIFO broken at seq", uint64(seq), 0)
				}
				last[pid] = seq
			}
			got++
			gotSum += Mix(v.tag)
			if cfg.WorkNs > 0 {
				Work(cfg.WorkNs)
			}
		}
		t.Ops = got

		// Stop early: when the wrapper is offering the next item (or is gone).
		t.Phase("stop")
		for t0 := Now(); atomic.LoadUint64(&offers) <= got && atomic.LoadInt32(&wrapperDone) == 0; {
			if Since(t0) > uint64(ordoneBound) {
				break // then stop wherever it is
			}
			SleepNs(20000)
		}
		tStop := Now()
		cancel()
		done, ok := waitFor(&upstream, ordoneBound)
		dt := Since(tStop)
		if ok {
			r.Metric("stop_to_joined_ns", float64(dt))
		} else {
			leaked := atomic.LoadInt32(&liveUpstream)
			plural, where := "s", "did not return"
			if leaked == 1 {
				plural = ""
			}
			if atomic.LoadUint64(&offers) > got {
				where = "is blocked handing over an item"
			}
			r.Fail("leaked %d upstream thread%s: still running %.3f s after the consumer stopped (the wrapper %s)",
				leaked, plural, float64(dt)/1e9, where)
			release() // release them, so that they end
			<-done
		}
		t.Phase("done")
	})

	// orDone(ctx, c): forward c to out until c closes or the ctx ends.
	r.Spawn("wrapper", func(t *Thread) {
		var n uint64
		defer func() {
			close(out) // defer close(out)
			atomic.StoreInt32(&wrapperDone, 1)
			t.Ops = n
			t.Phase("done")
			upstreamExit()
		}()
		for {
			t.Phase("recv upstream")
			var v ordoneItem
			select {
			case <-ctx.Done():
				return
			case w, ok := <-c:
				if !ok {
					return // the upstream closed
				}
				v = w
			}
			t.Phase("send out")
			atomic.AddUint64(&offers, 1)
			if seed {
				// the seed: `out <- v` alone (only the harness's reap can end it)
				select {
				case out <- v:
				case <-reap.Done():
					abandoned++
					abandonedSum += Mix(v.tag)
					return
				}
			} else {
				select {
				case out <- v:
				case <-ctx.Done(): // cancelled with an item in hand: counted
					abandoned++
					abandonedSum += Mix(v.tag)
					return
				}
			}
			n++
		}
	})

	for i := 0; i < P; i++ {
		id := uint64(i)
		r.Spawn("producer", func(t *Thread) {
			n := per
			if id < extra {
				n++
			}
			var seq, sum uint64
			untilSample := int64(0)
			t.Phase("send")
		loop:
			for ; !finite || seq < n; seq++ {
				it := ordoneItem{tag: id<<ordoneTagShift | seq}
				if cfg.LatSample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = cfg.LatSample
						it.ts = Now()
					}
				}
				select {
				case c <- it:
				case <-ctx.Done():
					break loop
				}
				sum += Mix(it.tag)
			}
			atomic.AddUint64(&sent, seq)
			atomic.AddUint64(&sentSum, sum)
			t.Ops = seq
			if finite && atomic.AddInt32(&liveProducers, -1) == 0 {
				close(c)
			}
			t.Phase("done")
			upstreamExit()
		})
	}
	r.Start()
	r.WaitDuration()
	r.Join()

	var left, leftSum uint64
drain:
	for {
		select {
		case v, ok := <-c:
			if !ok {
				break drain
			}
			left++
			leftSum += Mix(v.tag)
		default:
			break drain
		}
	}
	if errs.n > 0 {
		r.Fail("%s %d (%d errors)", errs.first, errs.a, errs.n)
	}
	if sent != got+abandoned+left {
		r.Fail("items lost: sent %d != received %d + abandoned by the wrapper %d + left upstream %d",
			sent, got, abandoned, left)
	} else if sentSum != gotSum+abandonedSum+leftSum {
		r.Fail("checksum: sent %016x != received + abandoned + left %016x", sentSum, gotSum+abandonedSum+leftSum)
	}
	src := uint64(srcItems)
	if cfg.Duration <= 0 {
		want := uint64(cfg.Items)
		if finite && src < want {
			want = src
		}
		if got != want {
			r.Fail("the consumer got %d items, expected %d", got, want)
		}
		if finite && src < uint64(cfg.Items) && !sawClosed {
			r.Fail("the upstream ended after %d items but the consumer never saw the close", src)
		}
	} else if finite && got > src {
		r.Fail("the consumer got %d items from an upstream of %d", got, src)
	}
	select {
	case _, ok := <-out:
		if ok {
			r.Fail("the wrapper left its output open")
		}
	default:
		r.Fail("the wrapper left its output open")
	}
	r.Ops = got
	return nil
}

func init() {
	register(&Pattern{
		Name:     "ordone",
		Params:   []string{"src_items"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"stop_to_joined_ns"},
		Run:      ordoneRun,
	})
}
