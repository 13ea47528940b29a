package main

// semaphore: N tasks, at most K running at once, the twin of
// workloads/semaphore.c. The counting semaphore of the seed catalogue
// (pools_semaphore): a buffered channel of K tokens, `sem <- struct{}{}` to
// acquire, `<-sem` to release (the C uses cp_sem with K permits, 1 a task).
//
// Knobs: --items N tasks, --capacity K (the channel's capacity), --threads
// workers that claim task ids from an atomic counter and take 1 token per
// task, --work-ns inside the token.
// One op: one task run. Latency: the wait in the acquire (the send of the
// token), 1 in LatSample tasks.
//
// Invariants (as the C original):
//   - concurrency: an atomic counter, incremented after acquire and
//     decremented before release, never exceeds K (its max is tracked);
//   - exactly once: every task id ran once (count mode: a per-task
//     counter; tasks run == tasks asked for);
//   - no leak: afterwards K tokens can be taken without blocking (the
//     channel is empty), as try_acquire(K) in the C;
//   - every goroutine ended.

import (
	"errors"
	"sync/atomic"
)

func semRun(r *Run) error {
	c := r.Cfg
	capK := c.Capacity
	if capK < 1 {
		return errSemPermits
	}
	items := uint64(c.Items)
	sem := make(chan struct{}, capK)
	var next, ran uint64
	var running, maxRunning int64
	var runs []uint32 // count mode: times each task ran
	if c.Duration <= 0 {
		runs = make([]uint32, items)
	}
	for i := int64(0); i < c.Threads; i++ {
		r.Spawn("worker", func(t *Thread) {
			var n uint64
			untilSample := int64(0)
			t.Phase("acquire")
			for {
				id := atomic.AddUint64(&next, 1) - 1
				if !r.More(id, items) {
					break
				}
				var t0 uint64
				if c.LatSample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = c.LatSample
						t0 = Now()
					}
				}
				sem <- struct{}{} // Acquire
				if t0 != 0 {
					t.Hist.Record(Since(t0))
				}
				cur := atomic.AddInt64(&running, 1)
				for m := atomic.LoadInt64(&maxRunning); cur > m; m = atomic.LoadInt64(&maxRunning) {
					if atomic.CompareAndSwapInt64(&maxRunning, m, cur) {
						break
					}
				}
				if runs != nil {
					atomic.AddUint32(&runs[id], 1)
				}
				if c.WorkNs > 0 {
					Work(c.WorkNs)
				}
				atomic.AddInt64(&running, -1)
				<-sem // Release
				n++
			}
			atomic.AddUint64(&ran, n)
			t.Ops = n
			t.Phase("done")
		})
	}
	r.Start()
	r.WaitDuration()
	r.Join()

	if maxRunning > capK {
		r.Fail("concurrency %d exceeded capacity %d", maxRunning, capK)
	}
	if runs != nil {
		for i, v := range runs {
			if v != 1 {
				r.Fail("task %d ran %d times", i, v)
				break
			}
		}
		if ran != items {
			r.Fail("ran %d tasks, asked for %d", ran, items)
		}
	}
	// try_acquire(capacity): every token free, taken without blocking
	if !semTryAcquire(sem, capK) {
		r.Fail("permits leaked: try_acquire(capacity) failed")
	}
	r.Ops = ran
	return nil
}

var errSemPermits = errors.New("--capacity (the semaphore's permits) must be >= 1")

// semTryAcquire is try_acquire(n) then release(n): true if n tokens could be
// taken without blocking (the ones taken are given back either way).
func semTryAcquire(sem chan struct{}, n int64) bool {
	var got int64
	for full := false; got < n && !full; {
		select {
		case sem <- struct{}{}:
			got++
		default:
			full = true
		}
	}
	ok := got == n
	for ; got > 0; got-- {
		<-sem
	}
	return ok
}

func init() {
	register(&Pattern{Name: "semaphore", Run: semRun})
}
