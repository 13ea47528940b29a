package main

// rwmutex: T goroutines share a "map" of 64 uint64 slots under a
// sync.RWMutex, the twin of workloads/rwmutex.c (seed primitives_rwmutex;
// Go's BenchmarkRWMutexWrite100/Work, sync/rwmutex_test.go). One op in
// --set write_ratio=N is a write (under Lock: all 64 slots get the same new
// value), the rest are reads (under RLock: read all 64); which one is drawn
// from the goroutine's Mix sequence seeded with --seed, as in the C.
//
// One op: one read or write critical section. Latency: the time to acquire
// the lock (read or write), 1 in LatSample (countdown from index mod
// LatSample). --work-ns of busy work inside every critical section.
//
// Invariants (as the C original): no torn write (a reader sees all 64 slots
// equal); no lost write (the final value equals the number of writes); a
// reader never sees the value go backwards; count mode: exactly --items
// ops; every goroutine ended.

import (
	"sync"
	"sync/atomic"
)

const rwmutexSlots = 64

type rwmutexState struct {
	mu                      sync.RWMutex
	slot                    [rwmutexSlots]uint64 // under mu
	writes, torn, backwards uint64               // atomic
}

func rwmutexRun(r *Run) error {
	c := r.Cfg
	T := int(c.Threads)
	s := &rwmutexState{}
	per, extra := uint64(c.Items)/uint64(T), uint64(c.Items)%uint64(T)
	ratio := uint64(c.Param("write_ratio"))
	if ratio == 0 {
		ratio = 1
	}
	thr := make([]*Thread, 0, T)
	for i := 0; i < T; i++ {
		id := uint64(i)
		thr = append(thr, r.Spawn("rw", func(t *Thread) {
			work, sample := c.WorkNs, c.LatSample
			n := per
			if id < extra {
				n++
			}
			rng := Mix(c.Seed ^ (id + 1))
			var done, writes, torn, backwards, last uint64
			var untilSample int64
			if sample > 0 {
				untilSample = int64(id % uint64(sample))
			}
			t.Phase("rw")
			for ; r.More(done, n); done++ {
				rng = Mix(rng)
				write := rng%ratio == 0
				var t0 uint64
				sampled := false
				if sample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = sample
						sampled = true
						t0 = Now()
					}
				}
				if write {
					s.mu.Lock()
					if sampled {
						t.Hist.Record(Since(t0))
					}
					v := s.slot[0] + 1
					for k := range s.slot {
						s.slot[k] = v
					}
					if work > 0 {
						Work(work)
					}
					s.mu.Unlock()
					writes++
				} else {
					s.mu.RLock()
					if sampled {
						t.Hist.Record(Since(t0))
					}
					v := s.slot[0]
					bad := false
					for k := 1; k < rwmutexSlots; k++ {
						if s.slot[k] != v { // all 64 read, as the C's bad |= ...
							bad = true
						}
					}
					if work > 0 {
						Work(work)
					}
					s.mu.RUnlock()
					if bad {
						torn++
					}
					if v < last {
						backwards++
					}
					last = v
				}
			}
			atomic.AddUint64(&s.writes, writes)
			atomic.AddUint64(&s.torn, torn)
			atomic.AddUint64(&s.backwards, backwards)
			t.Ops = done
			t.Phase("done")
		}))
	}
	r.Start()
	r.WaitDuration()
	r.Join()

	var ops, mx uint64
	mn := ^uint64(0)
	for _, t := range thr {
		ops += t.Ops
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
	if s.torn > 0 {
		r.Fail("torn write: %d reads saw the 64 slots disagree", s.torn)
	}
	if s.backwards > 0 {
		r.Fail("%d reads saw the value go backwards", s.backwards)
	}
	if s.slot[0] != s.writes {
		r.Fail("lost write: value %d after %d writes", s.slot[0], s.writes)
	}
	if c.Duration <= 0 && ops != uint64(c.Items) {
		r.Fail("%d ops, asked for --items=%d", ops, c.Items)
	}
	r.Ops = ops
	return nil
}

func init() {
	register(&Pattern{Name: "rwmutex", Params: []string{"write_ratio"}, Run: rwmutexRun})
}
