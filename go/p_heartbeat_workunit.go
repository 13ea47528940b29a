package main

// heartbeat_workunit: W workers (--threads) each beat once at the start of
// every unit of work, then do the unit (--work-ns) and send its result; an
// observer receives beats and results and checks that it saw every unit's
// beat before that unit's result. The twin of workloads/heartbeat_workunit.c:
// seed 000's scale_heartbeat_workunit in the shape of Concurrency in Go's
// doWork, a heartbeat channel per worker (capacity --capacity, Go's 1) and
// an unbuffered results channel. --set drop=1 beats as Go's version does,
// `select { case heartbeat <- beat: default: }` (a beat the channel cannot
// take is dropped and counted); drop=0 (the default) sends the beat in a
// select with the ctx, so none is lost. --set cancel_after_ms=T cancels the
// workers' ctx (context.WithCancel) mid-run.
//
// One op: a unit's result received by the observer. Latency: the unit's beat
// (sent at its start) -> its result received (every unit).
//
// The observer selects over a set of channels that shrinks as they close (W
// heartbeat channels and results): reflect.Select, Go's select over a
// dynamic case list.
//
// Metrics: beats, dropped. Invariants: as the C original (every unit's beat
// before its result, beats in order and accounted for, results once each
// and in order, cancellation within 1 s, every goroutine ended).

import (
	"context"
	"reflect"
	"sync/atomic"
)

// Exported fields: the observer reads them through reflect.Select's values.
type hbwBeat struct {
	Worker int
	Seq    uint64
}

type hbwResult struct {
	Worker      int
	BeatDropped bool
	Seq, TBeat  uint64 // TBeat: the beat's time, on the Now() clock
}

type hbwWorker struct {
	id    int
	units uint64       // count mode: this worker's share
	beats chan hbwBeat // closed by the worker at its end
	// published at the worker's end (read after Join)
	started, done, sent, dropped, beatAbandoned, resultAbandoned uint64
}

func hbwRun(r *Run) error {
	c := r.Cfg
	W := int(c.Threads)
	drop := c.Param("drop") != 0
	cancelMs := c.Param("cancel_after_ms")
	work := c.WorkNs
	results := make(chan hbwResult) // unbuffered, closed by the last worker
	ctx := context.Background()     // Done() nil: no cancellation case unless asked for
	var cancel context.CancelFunc
	if cancelMs > 0 {
		ctx, cancel = context.WithCancel(ctx)
		defer cancel()
	}
	live := int32(W)
	ws := make([]*hbwWorker, W)
	for i := range ws {
		units := uint64(c.Items) / uint64(W)
		if uint64(i) < uint64(c.Items)%uint64(W) {
			units++
		}
		ws[i] = &hbwWorker{id: i, units: units, beats: make(chan hbwBeat, c.Capacity)}
	}

	// observer-only state, read after Join
	lastBeat := make([]int64, W) // -1 before the first
	for i := range lastBeat {
		lastBeat[i] = -1
	}
	nextResult := make([]uint64, W)
	var gotBeats, gotResults, unseen, badBeat, badOrder uint64
	var firstBad [3]uint64
	onBeat := func(b hbwBeat) {
		last := lastBeat[b.Worker]
		ok := int64(b.Seq) == last+1
		if drop {
			ok = int64(b.Seq) > last
		}
		if !ok {
			if badBeat == 0 {
				firstBad[1] = b.Seq
			}
			badBeat++
		}
		lastBeat[b.Worker] = int64(b.Seq)
		gotBeats++
	}

	r.Spawn("observer", func(t *Thread) {
		cases := make([]reflect.SelectCase, W+1)
		who := make([]int, W+1) // the worker whose beats a case takes; -1: results
		for i, w := range ws {
			cases[i] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(w.beats)}
			who[i] = i
		}
		cases[W] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(results)}
		who[W] = -1
		t.Phase("observe")
		for n := W + 1; n > 0; { // no ctx: drain until every channel is closed
			i, v, ok := reflect.Select(cases[:n])
			if !ok {
				n--
				cases[i], who[i] = cases[n], who[n]
				continue
			}
			if who[i] >= 0 {
				onBeat(hbwBeat{Worker: int(v.Field(0).Int()), Seq: v.Field(1).Uint()})
				continue
			}
			res := hbwResult{Worker: int(v.Field(0).Int()), BeatDropped: v.Field(1).Bool(), Seq: v.Field(2).Uint(),
				TBeat: v.Field(3).Uint()}
			gotResults++
			if res.Worker < 0 || res.Worker >= W {
				if badOrder == 0 {
					firstBad[0] = res.Seq
				}
				badOrder++
				continue
			}
			// the select may pick the result while its beat still waits in
			// the heartbeat channel (both ready: a random pick); take those first
			beats := ws[res.Worker].beats
		pending:
			for {
				select {
				case b, ok := <-beats:
					if !ok {
						break pending
					}
					onBeat(b)
				default:
					break pending
				}
			}
			if !res.BeatDropped && lastBeat[res.Worker] < int64(res.Seq) {
				if unseen == 0 {
					firstBad[2] = res.Seq
				}
				unseen++
			}
			if res.Seq != nextResult[res.Worker] {
				if badOrder == 0 {
					firstBad[0] = res.Seq
				}
				badOrder++
			} else {
				nextResult[res.Worker]++
			}
			t.Hist.Record(Since(res.TBeat))
		}
		t.Ops = gotResults
		t.Phase("done")
	})
	for _, w := range ws {
		w := w
		r.Spawn("worker", func(t *Thread) {
			done := ctx.Done()
			var seq uint64
		units:
			for ; r.More(seq, w.units); seq++ {
				w.started++
				b := hbwBeat{Worker: w.id, Seq: seq}
				res := hbwResult{Worker: w.id, Seq: seq, TBeat: Now()}
				t.Phase("beat")
				if drop {
					select {
					case w.beats <- b:
						w.sent++
					default:
						w.dropped++
						res.BeatDropped = true
					}
				} else {
					select {
					case w.beats <- b:
						w.sent++
					case <-done:
						w.beatAbandoned++ // cancelled
						break units
					}
				}
				t.Phase("work")
				if work > 0 {
					Work(work)
				}
				t.Phase("send result")
				select {
				case results <- res:
				case <-done:
					w.resultAbandoned++
					break units
				}
				w.done++
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

	var started, done, sent, dropped, babandoned, rabandoned, left uint64
	for _, w := range ws {
		for range w.beats { // closed: what is still in it
			left++
		}
		started += w.started
		done += w.done
		sent += w.sent
		dropped += w.dropped
		babandoned += w.beatAbandoned
		rabandoned += w.resultAbandoned
	}
	if unseen != 0 {
		r.Fail("%d results arrived before their unit's beat (first: unit %d)", unseen, firstBad[2])
	}
	if badBeat != 0 {
		r.Fail("%d beats out of order, duplicated or missing (first: seq %d)", badBeat, firstBad[1])
	}
	if badOrder != 0 {
		r.Fail("%d results out of order or duplicated (first: unit %d)", badOrder, firstBad[0])
	}
	if sent != gotBeats+left {
		r.Fail("beats lost: sent %d != received %d + left %d", sent, gotBeats, left)
	}
	if started != sent+dropped+babandoned {
		r.Fail("units started %d != beats sent %d + dropped %d + abandoned %d", started, sent, dropped, babandoned)
	}
	if gotResults != done {
		r.Fail("results lost: workers sent %d, observer got %d", done, gotResults)
	}
	if cancelMs <= 0 && (babandoned != 0 || rabandoned != 0) {
		r.Fail("no cancellation, yet %d beats and %d results abandoned", babandoned, rabandoned)
	}
	if cancelMs <= 0 && c.Duration <= 0 && done != uint64(c.Items) {
		r.Fail("%d units done, expected %d", done, c.Items)
	}
	if cancelledAt != 0 && r.TEnd > cancelledAt && r.TEnd-cancelledAt > 1000000000 {
		r.Fail("cancellation took %.3f s to stop every thread (bound 1 s)", float64(r.TEnd-cancelledAt)/1e9)
	}

	r.Metric("beats", float64(gotBeats))
	r.Metric("dropped", float64(dropped))
	r.Ops = gotResults
	return nil
}

func init() {
	register(&Pattern{
		Name:    "heartbeat_workunit",
		Params:  []string{"drop", "cancel_after_ms"},
		Metrics: []string{"beats", "dropped"},
		Run:     hbwRun,
	})
}
