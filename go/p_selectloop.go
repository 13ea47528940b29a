package main

// selectloop: the cancellable for-select worker loop of the seed catalogue
// (flows_selectloop), the twin of workloads/selectloop.c:
//
//	for {
//	    select {
//	    case <-ctx.Done(): return
//	    case j, ok := <-in:
//	        if !ok { return }
//	        handle(j)
//	    }
//	}
//
// Goroutines: a producer sends --items jobs (or for --duration) into `in`
// (--capacity), then stops the workers by cancelling their ctx (--set
// stop=0) or by closing `in` (--set stop=1), and waits for them (a
// WaitGroup, bounded by 1 s); --threads W workers run the loop, each job's
// handling is --work-ns of work.
//
// One op: a job handled. Latency: the producer's send start -> the start of
// its handling. Metrics: stop_to_exit_ns (the stop -> every worker
// returned), late (jobs handled after the stop was issued, before the
// worker's select saw it: legal, a select with both cases ready picks one at
// random).
//
// Variant seed: the classic `break` inside the select, meant to leave the
// loop, leaves only the select: after the stop the worker spins on. The run
// fails with "leaked N of W worker threads" 1 s after the stop, then
// releases them (their select also watches an internal ctx, reap, that only
// the harness cancels) so that they end.
//
// Invariants (as the C): every worker returns within 1 s of the stop;
// nothing handled after the stop is observed; sent = handled + left in the
// channel (count and checksum of Mix(seq)), nothing left with stop=close;
// per-worker order; count mode: exactly --items sent; every goroutine ended.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

const selectloopBound = time.Second

type selectloopJob struct{ seq, ts uint64 }

func selectloopRun(r *Run) error {
	c := r.Cfg
	workers := int(c.Threads)
	seed := c.Variant == "seed"
	byClose := c.Param("stop") == 1
	in := make(chan selectloopJob, c.Capacity)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	reap, release := context.WithCancel(context.Background()) // only the harness cancels it
	defer release()
	var wg sync.WaitGroup
	var live int32 = int32(workers)
	var stopIssued int32
	var handled, handledSum, afterObserved, late uint64
	var sent, sentSum uint64
	var errs Errs
	wg.Add(workers)

	for i := 0; i < workers; i++ {
		r.Spawn("worker", func(t *Thread) {
			last := int64(-1)
			var n, sum uint64
			handle := func(j selectloopJob, observed bool) {
				if observed {
					atomic.AddUint64(&afterObserved, 1)
				}
				if atomic.LoadInt32(&stopIssued) != 0 {
					atomic.AddUint64(&late, 1)
				}
				if j.ts != 0 {
					t.Hist.Record(Since(j.ts))
				}
				if int64(j.seq) <= last {
					errs.note("per-worker order broken (seq, after)", j.seq, uint64(last))
				}
				last = int64(j.seq)
				n++
				sum += Mix(j.seq)
				if c.WorkNs > 0 {
					Work(c.WorkNs)
				}
			}
			t.Phase("select")
			if !seed {
			loop:
				for {
					select {
					case <-ctx.Done():
						break loop // return
					case j, ok := <-in:
						if !ok {
							break loop // return
						}
						handle(j, false)
					}
				}
			} else {
				// The seed: `break` leaves the select, not the for. Only the
				// harness's reap ends the loop.
				observed := false
				for reap.Err() == nil {
					select {
					case <-ctx.Done():
						if !observed {
							t.Phase("spinning after the stop")
						}
						observed = true
						break // meant to leave the loop
					case j, ok := <-in:
						if !ok {
							if !observed {
								t.Phase("spinning after the stop")
							}
							observed = true
							break // meant to leave the loop
						}
						handle(j, observed)
					case <-reap.Done():
					}
				}
			}
			atomic.AddUint64(&handled, n)
			atomic.AddUint64(&handledSum, sum)
			t.Ops = n
			t.Phase("done")
			atomic.AddInt32(&live, -1)
			wg.Done()
		})
	}
	r.Spawn("producer", func(t *Thread) {
		var seq, sum uint64
		untilSample := int64(0)
		t.Phase("send")
		for ; r.More(seq, uint64(c.Items)); seq++ {
			j := selectloopJob{seq: seq}
			if c.LatSample > 0 {
				if untilSample--; untilSample <= 0 {
					untilSample = c.LatSample
					j.ts = Now()
				}
			}
			in <- j // the workers loop until the stop
			sum += Mix(seq)
		}
		sent, sentSum = seq, sum
		t.Ops = seq

		t.Phase("stop")
		atomic.StoreInt32(&stopIssued, 1)
		tStop := Now()
		if byClose {
			close(in)
		} else {
			cancel()
		}
		done, ok := waitFor(&wg, selectloopBound)
		dt := Since(tStop)
		if ok {
			r.Metric("stop_to_exit_ns", float64(dt))
		} else {
			how := "cancel"
			if byClose {
				how = "close"
			}
			r.Fail("leaked %d of %d worker threads: still looping %.3f s after the %s (%d jobs handled after "+
				"they saw it)", atomic.LoadInt32(&live), workers, float64(dt)/1e9, how,
				atomic.LoadUint64(&afterObserved))
			release() // release them, so that they end
			<-done
		}
		t.Phase("done")
	})
	r.Start()
	r.WaitDuration()
	r.Join()

	var left, leftSum uint64
drain:
	for {
		select {
		case j, ok := <-in:
			if !ok {
				break drain
			}
			left++
			leftSum += Mix(j.seq)
		default:
			break drain
		}
	}
	how := "cancel"
	if byClose {
		how = "close"
	}
	if errs.n > 0 {
		r.Fail("%s: %d, %d (%d errors)", errs.first, errs.a, errs.b, errs.n)
	}
	if afterObserved > 0 {
		r.Fail("%d jobs handled after the worker had seen the %s", afterObserved, how)
	}
	if sent != handled+left {
		r.Fail("jobs lost: sent %d != handled %d + left in the channel %d", sent, handled, left)
	} else if sentSum != handledSum+leftSum {
		r.Fail("checksum: sent %016x != handled + left %016x", sentSum, handledSum+leftSum)
	}
	if byClose && left > 0 {
		r.Fail("%d jobs sent before the close were never handled", left)
	}
	if c.Duration <= 0 && sent != uint64(c.Items) {
		r.Fail("sent %d jobs, asked for %d", sent, c.Items)
	}
	r.Metric("late", float64(late))
	r.Ops = handled
	return nil
}

func init() {
	register(&Pattern{
		Name:     "selectloop",
		Params:   []string{"stop"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"stop_to_exit_ns", "late"},
		Run:      selectloopRun,
	})
}
