package main

// workerpool: a submitter feeds jobs into a bounded queue, N workers drain
// it and send one result per job to a results channel, a collector counts
// them: the twin of workloads/workerpool.c, the fixed-size pool of the seed catalogue
// (pools_workerpool; seed 001's WorkerPool, seed 002's workerPool): `for job
// := range jobs { results <- process(job) }`, the last worker closing
// results. Jobs can fail (--set fail_every=K: every K-th job reports an
// error, as a result, not lost) and the pool can be cancelled (--set
// cancel_after_ms=T: one context.WithCancel ends submitter and workers, which
// select on ctx.Done() beside each channel operation, and the pool must stop
// cleanly). Without cancellation the channel operations are plain (the C
// passes a NULL ctx): a select on a nil Done channel would only cost time.
//
// One op: one result collected. Latency: a job's sojourn, from its
// submission (open loop: its intended submission, and HistU from the actual
// one) to its result being collected, 1 in LatSample jobs.
//
// Invariants (as the C original):
//   - no job counted twice: the collector keeps a bitmap of job ids;
//   - nothing lost: submitted == collected + abandoned + left in the queue;
//   - collected == results the workers delivered;
//   - failures are reported: each result's error flag matches its job id;
//   - without cancellation every job is collected (count mode: --items);
//   - cancellation is observed promptly: every goroutine has ended within a
//     second of the cancel;
//   - every goroutine ended.

import (
	"context"
	"sync/atomic"
)

type wpJob struct{ id, submitted, actual uint64 }

type wpResult struct {
	id, submitted, actual uint64
	failed                bool
	worker                int
}

const wpChunkBits = 20

// wpSeen is the collector's bitmap of job ids, in chunks of 2^20 ids.
type wpSeen struct{ chunks [][]uint64 }

// mark sets id's bit and reports whether it was set already.
func (s *wpSeen) mark(id uint64) bool {
	c := int(id >> wpChunkBits)
	for len(s.chunks) <= c {
		s.chunks = append(s.chunks, nil)
	}
	if s.chunks[c] == nil {
		s.chunks[c] = make([]uint64, (1<<wpChunkBits)/64)
	}
	bit := id & (1<<wpChunkBits - 1)
	w, m := &s.chunks[c][bit>>6], uint64(1)<<(bit&63)
	was := *w&m != 0
	*w |= m
	return was
}

func wpRun(r *Run) error {
	c := r.Cfg
	workers := int(c.Threads)
	failEvery := uint64(c.Param("fail_every"))
	cancelMs := c.Param("cancel_after_ms")
	failedID := func(id uint64) bool { return failEvery != 0 && (id+1)%failEvery == 0 }

	jobs := make(chan wpJob, c.Capacity)
	results := make(chan wpResult, c.Capacity)
	var ctx context.Context
	var cancel context.CancelFunc
	var done <-chan struct{} // nil: no cancellation (plain channel operations)
	if cancelMs > 0 {
		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		done = ctx.Done()
	}
	live := int32(workers)
	var submitted, delivered, abandoned uint64
	// collector-only, read after Join
	var seen wpSeen
	var collected, dup, badFlag, firstDup uint64

	r.Spawn("collector", func(t *Thread) {
		t.Phase("collect")
		// No ctx: the collector drains every delivered result until the
		// last worker closes the channel, also after a cancel.
		for res := range results {
			if res.submitted != 0 {
				now := Now()
				t.Hist.Record(Diff(now, res.submitted))
				if t.HistU != nil {
					t.HistU.Record(Diff(now, res.actual))
				}
			}
			if seen.mark(res.id) {
				if dup == 0 {
					firstDup = res.id
				}
				dup++
			}
			if res.failed != failedID(res.id) {
				badFlag++
			}
			collected++
		}
		t.Ops = collected
		t.Phase("done")
	})
	for i := 0; i < workers; i++ {
		r.Spawn("worker", func(t *Thread) {
			var n, lost uint64
			t.Phase("recv job")
		loop:
			for {
				var j wpJob
				if done == nil {
					var ok bool
					if j, ok = <-jobs; !ok {
						break
					}
				} else {
					select {
					case jj, ok := <-jobs:
						if !ok {
							break loop
						}
						j = jj
					case <-done:
						break loop
					}
				}
				if c.WorkNs > 0 {
					Work(c.WorkNs)
				}
				res := wpResult{id: j.id, submitted: j.submitted, actual: j.actual, failed: failedID(j.id),
					worker: t.Index}
				t.Phase("send result")
				if done == nil {
					results <- res
				} else {
					select {
					case results <- res:
					case <-done:
						lost++ // cancelled with a result in hand: counted, not lost
						break loop
					}
				}
				n++
				t.Phase("recv job")
			}
			atomic.AddUint64(&delivered, n)
			atomic.AddUint64(&abandoned, lost)
			t.Ops = n
			if atomic.AddInt32(&live, -1) == 0 {
				close(results)
			}
			t.Phase("done")
		})
	}
	r.Spawn("submitter", func(t *Thread) {
		n := uint64(c.Items)
		var interval uint64 // open loop (--rate): one submission every 1/rate s, on schedule
		if c.Rate > 0 {
			interval = uint64(1e9 / c.Rate)
		}
		untilSample := int64(0)
		id := uint64(0)
		t.Phase("submit")
	loop:
		for ; r.More(id, n); id++ {
			j := wpJob{id: id}
			var intended uint64
			if interval != 0 {
				if intended = r.Pace(id, interval, 0); intended == 0 {
					break // stopped while waiting for its time
				}
			}
			if c.LatSample > 0 {
				if untilSample--; untilSample <= 0 {
					untilSample = c.LatSample
					j.actual = Now()
					j.submitted = j.actual
					if interval != 0 {
						j.submitted = intended
					}
				}
			}
			if done == nil {
				jobs <- j
			} else {
				select {
				case jobs <- j:
				case <-done:
					break loop // cancelled
				}
			}
		}
		atomic.StoreUint64(&submitted, id)
		t.Ops = id
		t.Phase("close jobs")
		close(jobs)
		t.Phase("done")
	})

	var cancelledAt uint64
	r.Start()
	if cancelMs > 0 {
		SleepNs(uint64(cancelMs) * 1000000)
		cancelledAt = Now()
		cancel()
	}
	r.WaitDuration()
	r.Join()

	// what the queue still holds after everyone stopped (closed by the submitter)
	var left uint64
	for j := range jobs {
		if seen.mark(j.id) {
			dup++
		}
		left++
	}
	if dup > 0 {
		r.Fail("job counted twice: %d duplicates (first id %d)", dup, firstDup)
	}
	if submitted != collected+abandoned+left {
		r.Fail("jobs lost: submitted %d != collected %d + abandoned %d + left in queue %d", submitted, collected,
			abandoned, left)
	}
	if delivered != collected {
		r.Fail("results lost: workers delivered %d, collector got %d", delivered, collected)
	}
	if badFlag > 0 {
		r.Fail("%d results carry the wrong failure flag", badFlag)
	}
	if ctx == nil && (abandoned > 0 || left > 0) {
		r.Fail("no cancellation, yet %d abandoned and %d left in the queue", abandoned, left)
	}
	if ctx == nil && c.Duration <= 0 && collected != uint64(c.Items) {
		r.Fail("collected %d results, expected %d", collected, c.Items)
	}
	if cancelledAt != 0 && r.TEnd > cancelledAt && r.TEnd-cancelledAt > 1000000000 {
		r.Fail("cancellation took %.3f s to stop every thread (bound 1 s)", float64(r.TEnd-cancelledAt)/1e9)
	}
	r.Ops = collected
	return nil
}

func init() {
	register(&Pattern{Name: "workerpool", OpenLoop: true, Params: []string{"fail_every", "cancel_after_ms"},
		Run: wpRun})
}
