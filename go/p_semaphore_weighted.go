package main

// semaphore_weighted: tasks of mixed weights share capacity K, the twin of
// workloads/semaphore_weighted.c: golang.org/x/sync/semaphore.Weighted as in
// the seed catalogue (pools_semaphore_sync); a task of weight w holds w of the K
// units while it runs.
//
// Knobs: --items N tasks, --capacity K, --threads workers; task i weighs
// 1 + Mix(seed ^ Mix(i)) % K (--seed); --work-ns inside the permits.
// One op: one task run. Latency: the wait in Acquire, 1 in LatSample tasks.
//
// Invariants (as the C original):
//   - capacity: the weight held (atomic, added after Acquire, taken off
//     before Release) never exceeds K;
//   - exactly once: every task ran once; the weight run equals the sum of
//     the task weights (count mode);
//   - no leak: afterwards TryAcquire(K) succeeds;
//   - every goroutine ended.
// FIFO is not checked, for the reason the C gives (a ticket taken before
// Acquire does not give the queue order).

import (
	"context"
	"errors"
	"sync/atomic"

	"golang.org/x/sync/semaphore"
)

var errSemwPermits = errors.New("--capacity (the semaphore's permits) must be >= 1")

func semwWeight(seed, id uint64, capK int64) int64 {
	return 1 + int64(Mix(seed^Mix(id))%uint64(capK))
}

func semwRun(r *Run) error {
	c := r.Cfg
	capK := c.Capacity
	if capK < 1 {
		return errSemwPermits
	}
	items, seed := uint64(c.Items), c.Seed
	sem := semaphore.NewWeighted(capK)
	ctx := context.Background()
	var next, ran, weightRan, errs uint64
	var held, maxHeld int64
	var runs []uint32 // count mode: times each task ran
	if c.Duration <= 0 {
		runs = make([]uint32, items)
	}
	for i := int64(0); i < c.Threads; i++ {
		r.Spawn("worker", func(t *Thread) {
			var n, wsum uint64
			untilSample := int64(0)
			t.Phase("acquire")
			for {
				id := atomic.AddUint64(&next, 1) - 1
				if !r.More(id, items) {
					break
				}
				w := semwWeight(seed, id, capK)
				var t0 uint64
				if c.LatSample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = c.LatSample
						t0 = Now()
					}
				}
				if err := sem.Acquire(ctx, w); err != nil {
					atomic.AddUint64(&errs, 1)
					break
				}
				if t0 != 0 {
					t.Hist.Record(Since(t0))
				}
				h := atomic.AddInt64(&held, w)
				for m := atomic.LoadInt64(&maxHeld); h > m; m = atomic.LoadInt64(&maxHeld) {
					if atomic.CompareAndSwapInt64(&maxHeld, m, h) {
						break
					}
				}
				if runs != nil {
					atomic.AddUint32(&runs[id], 1)
				}
				if c.WorkNs > 0 {
					Work(c.WorkNs)
				}
				atomic.AddInt64(&held, -w)
				sem.Release(w)
				n++
				wsum += uint64(w)
			}
			atomic.AddUint64(&ran, n)
			atomic.AddUint64(&weightRan, wsum)
			t.Ops = n
			t.Phase("done")
		})
	}
	r.Start()
	r.WaitDuration()
	r.Join()

	if errs > 0 {
		r.Fail("%d acquires failed", errs)
	}
	if maxHeld > capK {
		r.Fail("weight held %d exceeded capacity %d", maxHeld, capK)
	}
	if runs != nil {
		var want uint64
		for i, v := range runs {
			want += uint64(semwWeight(seed, uint64(i), capK))
			if v != 1 {
				r.Fail("task %d ran %d times", i, v)
				break
			}
		}
		if ran != items || weightRan != want {
			r.Fail("ran %d tasks of total weight %d, asked for %d of weight %d", ran, weightRan, items, want)
		}
	}
	if !sem.TryAcquire(capK) {
		r.Fail("permits leaked: try_acquire(capacity) failed")
	} else {
		sem.Release(capK)
	}
	r.Ops = ran
	return nil
}

func init() {
	register(&Pattern{Name: "semaphore_weighted", Run: semwRun})
}
