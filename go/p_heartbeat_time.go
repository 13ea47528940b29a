package main

// heartbeat_time: W workers (--threads) each emit a heartbeat on a
// time.Ticker (--set period_us) while they work; an observer receives every
// worker's beats and results and checks the period. The twin of
// workloads/heartbeat_time.c: seed 000's scale_heartbeat_time in the shape of
// Concurrency in Go's doWork(done, pulseInterval). Each worker loops on a
// select over done (the ctx, only when --set cancel_after_ms asks for one),
// its ticker (a tick sends a pulse without blocking, `select { case
// heartbeat <- beat: default: }`, so a beat nobody takes is dropped, never
// queued) and the send of its current result; the heartbeat channel has
// capacity 1, the results channel --capacity. A unit of work is --work-ns of
// busy work followed by the send of its result.
//
// One op: a unit's result received by the observer. Latency: a heartbeat's
// tick (the ticker's fire time, the time.Time it delivers) -> the observer
// receiving that beat (one sample per beat, not per op).
//
// The observer selects over a set of channels that shrinks as they close (W
// heartbeat channels and results): Go's select statement is static, so it
// uses reflect.Select, Go's select over a dynamic case list.
//
// Metrics: jitter_p50_ns, jitter_p99_ns (|interval - period| over
// consecutive beats of one worker at the observer), missed_beats, beats,
// dropped. Invariants: as the C original (results once each and in order,
// beats in order and accounted for, never faster than the ticker,
// cancellation within 1 s, every goroutine ended).

import (
	"context"
	"reflect"
	"sync/atomic"
	"time"
)

// Exported fields: the observer reads them through reflect.Select's values.
type hbtBeat struct {
	Worker int
	Seq    uint64
	Tick   uint64 // the ticker's fire time, on the Now() clock
}

type hbtResult struct {
	Worker int
	Seq    uint64
}

type hbtWorker struct {
	id    int
	units uint64       // count mode: this worker's share
	beats chan hbtBeat // capacity 1, closed by the worker at its end
	// published at the worker's end (read after Join)
	done, ticks, sent, dropped, abandoned, tooFast, tStart, tStop uint64
}

func hbtRun(r *Run) error {
	c := r.Cfg
	W := int(c.Threads)
	period := uint64(c.Param("period_us")) * 1000
	cancelMs := c.Param("cancel_after_ms")
	work := c.WorkNs
	results := make(chan hbtResult, c.Capacity)
	ctx := context.Background() // Done() nil: no cancellation case unless asked for
	var cancel context.CancelFunc
	if cancelMs > 0 {
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
	}
	live := int32(W)
	ws := make([]*hbtWorker, W)
	for i := range ws {
		units := uint64(c.Items) / uint64(W)
		if uint64(i) < uint64(c.Items)%uint64(W) {
			units++
		}
		ws[i] = &hbtWorker{id: i, units: units, beats: make(chan hbtBeat, 1)}
	}

	// observer-only state, read after Join
	nextResult := make([]uint64, W)
	lastBeatSeq := make([]uint64, W)
	lastBeatAt := make([]uint64, W)
	var gotResults, gotBeats, badOrder, badBeat, missed uint64
	var firstBad [2]uint64
	jitter := &Hist{}

	r.Spawn("observer", func(t *Thread) {
		onBeat := func(b hbtBeat) {
			now := Now()
			w := b.Worker
			gotBeats++
			t.Hist.Record(Diff(now, b.Tick))
			if lastBeatAt[w] != 0 {
				if b.Seq <= lastBeatSeq[w] {
					if badBeat == 0 {
						firstBad[1] = b.Seq
					}
					badBeat++
				}
				gap := Diff(now, lastBeatAt[w])
				if gap > period {
					jitter.Record(gap - period)
				} else {
					jitter.Record(period - gap)
				}
				if k := (gap + period/2) / period; k > 1 { // periods this interval spans
					missed += k - 1
				}
			}
			lastBeatSeq[w] = b.Seq
			lastBeatAt[w] = now
		}
		cases := make([]reflect.SelectCase, W+1)
		who := make([]int, W+1) // the worker whose beats a case takes; -1: results
		for i, w := range ws {
			cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w.beats)}
			who[i] = i
		}
		cases[W] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(results)}
		who[W] = -1
		t.Phase("observe")
		// no ctx: drain every beat and result until each channel is closed
		for n := W + 1; n > 0; {
			i, v, ok := reflect.Select(cases[:n])
			if !ok { // that channel is done: stop selecting on it
				n--
				cases[i], who[i] = cases[n], who[n]
				continue
			}
			if who[i] >= 0 {
				onBeat(hbtBeat{Worker: int(v.Field(0).Int()), Seq: v.Field(1).Uint(), Tick: v.Field(2).Uint()})
				continue
			}
			rw, rs := int(v.Field(0).Int()), v.Field(1).Uint()
			if rw < 0 || rw >= W || rs != nextResult[rw] {
				if badOrder == 0 {
					firstBad[0] = rs
				}
				badOrder++
			} else {
				nextResult[rw]++
			}
			gotResults++
		}
		t.Ops = gotResults
		t.Phase("done")
	})
	for _, w := range ws {
		w := w
		r.Spawn("worker", func(t *Thread) {
			done := ctx.Done()
			res := hbtResult{Worker: w.id}
			var seq, bseq uint64
			// the ticker runs from here, on the start gate's side
			w.tStart = Now()
			tk := time.NewTicker(time.Duration(period))
		units:
			for ; r.More(seq, w.units); seq++ {
				t.Phase("work")
				if work > 0 {
					Work(work)
				}
				res.Seq = seq
				t.Phase("select tick/result")
				for {
					select {
					case tick := <-tk.C:
						w.ticks++
						b := hbtBeat{Worker: w.id, Seq: bseq, Tick: Diff(Now(), uint64(time.Since(tick)))}
						select {
						case w.beats <- b:
							w.sent++
							bseq++
						default:
							w.dropped++ // nobody took the last one: drop, never queue
						}
						continue
					case results <- res:
						w.done++
					case <-done: // cancelled with a result in hand
						w.abandoned++
						break units
					}
					break
				}
			}
			w.tStop = Now()
			tk.Stop()
			// ticks are never early: at most one per whole period since the start
			if w.ticks > (w.tStop-w.tStart)/period+1 {
				w.tooFast = w.ticks
			}
			t.Ops = w.done
			t.Phase("close")
			close(w.beats)
			if atomic.AddInt32(&live, -1) == 0 {
				close(results)
			}
			t.Phase("done")
		})
	}
	var cancelledAt uint64
	r.Start()
	if cancelMs > 0 {
		SleepNs(uint64(cancelMs) * 1000000)
		cancelledAt = Now()
		cancel()
	}
	r.WaitDuration()
	r.Join()

	var done, ticks, sent, dropped, abandoned, left uint64
	for i, w := range ws {
		for range w.beats { // closed: what is still in it
			left++
		}
		done += w.done
		ticks += w.ticks
		sent += w.sent
		dropped += w.dropped
		abandoned += w.abandoned
		if w.tooFast != 0 {
			r.Fail("worker %d took %d ticks in %.3f ms: faster than one per period of %d us", i, w.tooFast,
				float64(w.tStop-w.tStart)/1e6, period/1000)
		}
	}
	if badOrder != 0 {
		r.Fail("%d results out of order or duplicated (first: seq %d)", badOrder, firstBad[0])
	}
	if gotResults != done {
		r.Fail("results lost: workers sent %d, observer got %d", done, gotResults)
	}
	if cancelMs <= 0 && c.Duration <= 0 && done != uint64(c.Items) {
		r.Fail("%d units done, expected %d", done, c.Items)
	}
	if cancelMs <= 0 && abandoned != 0 {
		r.Fail("no cancellation, yet %d results abandoned", abandoned)
	}
	if badBeat != 0 {
		r.Fail("%d beats duplicated or out of order (first: seq %d)", badBeat, firstBad[1])
	}
	if sent != gotBeats+left {
		r.Fail("beats lost: sent %d != received %d + left %d", sent, gotBeats, left)
	}
	if ticks != sent+dropped {
		r.Fail("ticks %d != beats sent %d + dropped %d", ticks, sent, dropped)
	}
	if cancelledAt != 0 && r.TEnd > cancelledAt && r.TEnd-cancelledAt > 1000000000 {
		r.Fail("cancellation took %.3f s to stop every thread (bound 1 s)", float64(r.TEnd-cancelledAt)/1e9)
	}

	if jitter.Count() != 0 {
		r.Metric("jitter_p50_ns", float64(jitter.Percentile(50)))
		r.Metric("jitter_p99_ns", float64(jitter.Percentile(99)))
		r.Metric("missed_beats", float64(missed))
	}
	r.Metric("beats", float64(gotBeats))
	r.Metric("dropped", float64(dropped))
	r.Ops = gotResults
	return nil
}

func init() {
	register(&Pattern{
		Name:    "heartbeat_time",
		Params:  []string{"period_us", "cancel_after_ms"},
		Metrics: []string{"jitter_p50_ns", "jitter_p99_ns", "missed_beats", "beats", "dropped"},
		Run:     hbtRun,
	})
}
