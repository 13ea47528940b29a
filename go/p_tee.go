package main

// tee: one stream duplicated to two outputs, as the tee channel of the
// seeds (flows_tee), the twin of workloads/tee.c: for each item v taken from
// the input (a select with <-ctx.Done()), the tee goroutine sends v to both
// outputs in whichever order they become ready (a select over the two sends
// and <-ctx.Done(), twice, setting the output that took it to nil), and
// closes both outputs when it leaves. It takes the next item only when both
// have this one, so the slower reader paces both.
//
// Goroutines: a producer (its sends select with ctx.Done(); it closes the
// input after --items items or at the end of --duration), the tee, and two
// readers ranging over their outputs. Reader 2 is the slow one: --work-ns of
// work per item. --capacity is that of the input and of both outputs.
// --set stop_at=K: reader 2 leaves after K items: it waits (at most 1 s)
// until the tee offers it the next item, cancels the ctx, and waits (1 s at
// most) for the others to return.
//
// One op: an item delivered to both outputs. Latency: per output, the
// producer's send start -> that reader's receive. Metrics: out1_p50_ns /
// out2_p50_ns, skew_max, stop_to_exit_ns (with stop_at).
//
// Variant seed: the tee's inner select without the `case <-ctx.Done()`:
// when one reader stops, the tee blocks forever offering it an item, and the
// other reader waits forever for a close. The run fails with "leaked N
// threads" after 1 s, then releases them (the tee's select also watches an
// internal ctx, reap, that only the harness cancels).
//
// Invariants (as the C): each reader receives 0, 1, 2, ... in order;
// pacing (a reader's lead over the other <= capacity + 1); accounting (sent
// = taken + left in the input; per output delivered = received + left in its
// buffer, taken - 1 <= delivered <= taken; with no stop every item reaches
// both, count mode exactly --items); both outputs closed; after reader 2's
// stop every other goroutine returns within 1 s; every goroutine ended.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

const teeBound = time.Second

type teeItem struct{ seq, ts uint64 }

func teeRun(r *Run) error {
	c := r.Cfg
	seed := c.Variant == "seed"
	capacity := c.Capacity
	stopAt := uint64(c.Param("stop_at"))
	in := make(chan teeItem, capacity)
	outs := [2]chan teeItem{make(chan teeItem, capacity), make(chan teeItem, capacity)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reap, release := context.WithCancel(context.Background()) // only the harness cancels it
	defer release()
	var others sync.WaitGroup // producer, tee, reader 1: what reader 2 waits for
	var liveOthers int32 = 3
	var got [2]uint64 // items each reader has received (atomic)
	var offered uint64
	var teeDone int32
	var skewMax int64
	var errs Errs
	var sent uint64  // the producer's
	var taken uint64 // the tee's
	var delivered [2]uint64
	stopped := false // reader 2 left early
	otherExit := func() {
		atomic.AddInt32(&liveOthers, -1)
		others.Done()
	}
	others.Add(3)

	leave := func(t *Thread, gotN uint64) {
		t.Phase("stop")
		stopped = true
		for t0 := Now(); atomic.LoadUint64(&offered) <= gotN && atomic.LoadInt32(&teeDone) == 0; {
			if Since(t0) > uint64(teeBound) {
				break
			}
			SleepNs(20000)
		}
		tStop := Now()
		cancel()
		done, ok := waitFor(&others, teeBound)
		dt := Since(tStop)
		if ok {
			r.Metric("stop_to_exit_ns", float64(dt))
			return
		}
		leaked := atomic.LoadInt32(&liveOthers)
		plural, where := "s", "is blocked offering an item to the reader that left"
		if leaked == 1 {
			plural = ""
		}
		if atomic.LoadInt32(&teeDone) != 0 {
			where = "returned"
		}
		r.Fail("leaked %d thread%s: still running %.3f s after reader 2 stopped (the tee %s)", leaked, plural,
			float64(dt)/1e9, where)
		release() // release them, so that they end
		<-done
	}

	var rd [2]*Thread
	for j := 0; j < 2; j++ {
		j := j
		name := "reader1"
		if j == 1 {
			name = "reader2"
		}
		rd[j] = r.Spawn(name, func(t *Thread) {
			var work int64
			var stop uint64
			if j == 1 {
				work, stop = c.WorkNs, stopAt
			}
			var expect uint64
			var skew int64
			t.Phase("recv")
			for !(stop > 0 && expect == stop) {
				v, ok := <-outs[j]
				if !ok {
					break
				}
				atomic.StoreUint64(&got[j], expect+1)
				if v.ts != 0 {
					t.Hist.Record(Since(v.ts))
				}
				if v.seq != expect {
					errs.note("a reader got an item out of sequence (got, expected)", v.seq, expect)
				}
				// the tee delivered items 0..seq-1 to the other output before taking this one
				lead := int64(v.seq) - int64(atomic.LoadUint64(&got[1-j]))
				if lead > capacity+1 {
					errs.note("pacing: a reader ran ahead of the other by (items, capacity)", uint64(lead),
						uint64(capacity))
				}
				if lead > skew {
					skew = lead
				}
				expect++
				if work > 0 {
					Work(work)
				}
			}
			t.Ops = expect
			for m := atomic.LoadInt64(&skewMax); skew > m && !atomic.CompareAndSwapInt64(&skewMax, m, skew); {
				m = atomic.LoadInt64(&skewMax)
			}
			if stop > 0 && expect == stop {
				leave(t, expect)
			}
			t.Phase("done")
			if j == 0 {
				otherExit()
			}
		})
	}

	r.Spawn("tee", func(t *Thread) {
		defer func() {
			close(outs[0])
			close(outs[1])
			atomic.StoreInt32(&teeDone, 1)
			t.Ops = taken
			t.Phase("done")
			otherExit()
		}()
		for {
			t.Phase("recv")
			var v teeItem
			select {
			case w, ok := <-in:
				if !ok {
					return
				}
				v = w
			case <-ctx.Done():
				return
			}
			taken++
			atomic.AddUint64(&offered, 1)
			t.Phase("send both")
			out1, out2 := outs[0], outs[1]
			for i := 0; i < 2; i++ {
				if seed {
					// the seed: no `case <-ctx.Done()` (only the harness's reap ends it)
					select {
					case out1 <- v:
						out1 = nil
						delivered[0]++
					case out2 <- v:
						out2 = nil
						delivered[1]++
					case <-reap.Done():
						return
					}
				} else {
					select {
					case out1 <- v:
						out1 = nil
						delivered[0]++
					case out2 <- v:
						out2 = nil
						delivered[1]++
					case <-ctx.Done():
						return // with v in hand
					}
				}
			}
		}
	})

	r.Spawn("producer", func(t *Thread) {
		var seq uint64
		untilSample := int64(0)
		t.Phase("send")
	loop:
		for ; r.More(seq, uint64(c.Items)); seq++ {
			it := teeItem{seq: seq}
			if c.LatSample > 0 {
				if untilSample--; untilSample <= 0 {
					untilSample = c.LatSample
					it.ts = Now()
				}
			}
			select {
			case in <- it:
			case <-ctx.Done():
				break loop
			}
		}
		sent = seq
		t.Ops = seq
		close(in)
		t.Phase("done")
		otherExit()
	})
	r.Start()
	r.WaitDuration()
	r.Join()

	var leftIn uint64
	var leftOut [2]uint64
	gotN := [2]uint64{atomic.LoadUint64(&got[0]), atomic.LoadUint64(&got[1])}
	drain := func(ch chan teeItem) (n uint64, closed bool) {
		for {
			select {
			case _, ok := <-ch:
				if !ok {
					return n, true
				}
				n++
			default:
				return n, false
			}
		}
	}
	leftIn, _ = drain(in)
	unclosed := 0
	for j := 0; j < 2; j++ {
		var closed bool
		leftOut[j], closed = drain(outs[j])
		if !closed {
			unclosed++
		}
	}
	if errs.n > 0 {
		r.Fail("%s: %d, %d (%d errors)", errs.first, errs.a, errs.b, errs.n)
	}
	tk := taken
	if sent != tk+leftIn {
		r.Fail("items lost upstream: sent %d != taken by the tee %d + left in the input %d", sent, tk, leftIn)
	}
	for j := 0; j < 2; j++ {
		if delivered[j] != gotN[j]+leftOut[j] {
			r.Fail("output %d: the tee delivered %d items, reader got %d + %d left in its buffer", j+1,
				delivered[j], gotN[j], leftOut[j])
		}
		if delivered[j] > tk || delivered[j]+1 < tk {
			r.Fail("output %d: delivered %d of %d items taken (at most the one in hand may miss it)", j+1,
				delivered[j], tk)
		}
		if !stopped && (delivered[j] != tk || leftIn > 0) {
			r.Fail("no stop, yet output %d got %d of %d items taken (%d left in the input)", j+1, delivered[j],
				tk, leftIn)
		}
	}
	if !stopped && c.Duration <= 0 && (gotN[0] != uint64(c.Items) || gotN[1] != uint64(c.Items)) {
		r.Fail("readers got %d and %d items, expected %d each", gotN[0], gotN[1], c.Items)
	}
	if unclosed > 0 {
		r.Fail("%d output(s) left open by the tee", unclosed)
	}
	for j, name := range []string{"out1_p50_ns", "out2_p50_ns"} {
		if h := rd[j].Hist; h.Count() > 0 {
			r.Metric(name, float64(h.Percentile(50.0)))
		}
	}
	r.Metric("skew_max", float64(atomic.LoadInt64(&skewMax)))
	r.Ops = gotN[0]
	if gotN[1] < gotN[0] {
		r.Ops = gotN[1]
	}
	return nil
}

func init() {
	register(&Pattern{
		Name:     "tee",
		Params:   []string{"stop_at"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"out1_p50_ns", "out2_p50_ns", "skew_max", "stop_to_exit_ns"},
		Run:      teeRun,
	})
}
