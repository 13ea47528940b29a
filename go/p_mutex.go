package main

// mutex: T goroutines increment one shared counter under a sync.Mutex, the
// twin of workloads/mutex.c (Go's BenchmarkMutex / BenchmarkMutexWork,
// sync/mutex_test.go). --work-ns of busy work inside the critical section,
// --set outside_ns outside it.
//
// One op: one critical section (one increment). Latency: the time to acquire
// the lock (Lock's duration), 1 in LatSample (each goroutine's countdown
// starts at its index mod LatSample, as in the C). Count-based runs share one
// budget of --items increments, taken under the lock, so the split of the ops
// between goroutines shows the lock's fairness (r.Fair).
//
// Invariants (as the C original): the counter (plain memory, ordered only by
// the lock) equals the sum of the goroutines' op counts, and --items exactly
// in count mode; the owner word written at the start of each critical
// section is unchanged at its end (mutual exclusion); every goroutine ended.

import (
	"sync"
	"sync/atomic"
)

type mutexState struct {
	mu       sync.Mutex
	counter  uint64 // under mu
	owner    uint64 // under mu: who is inside (id + 1)
	budget   uint64 // count mode: total increments; 0: time-based
	overlaps uint64 // atomic
}

func mutexRun(r *Run) error {
	c := r.Cfg
	T := int(c.Threads)
	outside := c.Param("outside_ns")
	s := &mutexState{}
	if c.Duration <= 0 {
		s.budget = uint64(c.Items)
		if s.budget == 0 {
			s.budget = 1 // --items=0: one op
		}
	}
	thr := make([]*Thread, 0, T)
	for i := 0; i < T; i++ {
		id := uint64(i)
		thr = append(thr, r.Spawn("locker", func(t *Thread) {
			work, sample := c.WorkNs, c.LatSample
			var untilSample int64
			if sample > 0 {
				untilSample = int64(id % uint64(sample))
			}
			var done, overlaps uint64
			t.Phase("lock")
			for {
				if s.budget == 0 && r.Stopped() {
					break
				}
				if sample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = sample
						t0 := Now()
						s.mu.Lock()
						t.Hist.Record(Since(t0))
					} else {
						s.mu.Lock()
					}
				} else {
					s.mu.Lock()
				}
				if s.budget != 0 && s.counter >= s.budget {
					s.mu.Unlock()
					break
				}
				s.owner = id + 1
				s.counter++
				if work > 0 {
					Work(work)
				}
				if s.owner != id+1 {
					overlaps++
				}
				s.mu.Unlock()
				done++
				if outside > 0 {
					Work(outside)
				}
			}
			if overlaps > 0 {
				atomic.AddUint64(&s.overlaps, overlaps)
			}
			t.Ops = done
			t.Phase("done")
		}))
	}
	r.Start()
	r.WaitDuration()
	r.Join()

	var sum, mx uint64
	mn := ^uint64(0)
	for _, t := range thr {
		sum += t.Ops
		if t.Ops < mn {
			mn = t.Ops
		}
		if t.Ops > mx {
			mx = t.Ops
		}
	}
	if len(thr) == 0 {
		mn = 0
	}
	r.Fair(mn, mx)
	if n := atomic.LoadUint64(&s.overlaps); n > 0 {
		r.Fail("mutual exclusion broken: %d critical sections saw another goroutine inside", n)
	}
	if s.counter != sum {
		r.Fail("counter %d != %d increments the goroutines made (lost update)", s.counter, sum)
	}
	if c.Duration <= 0 && s.counter != s.budget {
		r.Fail("counter %d, asked for --items=%d", s.counter, s.budget)
	}
	r.Ops = sum
	return nil
}

func init() {
	register(&Pattern{Name: "mutex", Params: []string{"outside_ns"}, Run: mutexRun})
}
