package main

// atomic: T goroutines increment a counter, the twin of workloads/atomic.c
// (seed primitives_atomic; Go's BenchmarkAtomicAdd against per-P counters
// summed at the end), the null reference of the primitives group:
//
//	--set mode=0  one shared counter, atomic.Uint64.Add (its cache line
//	              bounces between the goroutines' cores);
//	--set mode=1  one counter per goroutine, each on its own cache line,
//	              atomic.Uint64.Add (the locked instruction alone), summed
//	              at the end;
//	--set mode=2  as 1, but a plain load and store (one writer per counter:
//	              no read-modify-write instruction at all). C uses a relaxed
//	              atomic load and store; Go has no relaxed atomics and its
//	              atomic Store is an XCHG on amd64 (a locked instruction), so
//	              the Go counter is a plain field that only its goroutine
//	              writes and that is read after the join (no race).
//
// One op: one increment. Latency: one batch of 1000 increments, sampled one
// batch in max(1, ceil(LatSample / 1000)).
//
// Invariants (as the C original): exact total (the counters sum to the
// increments the goroutines report, == --items in count mode), every
// goroutine ended.

import "sync/atomic"

const atomicBatch = 1000

// atomicPadded is one counter on its own 64-byte cache line.
type atomicPadded struct {
	v     atomic.Uint64
	plain uint64 // mode 2: written by its goroutine only
	_     [48]byte
}

// atomicIncr adds k to ctr with fetch-adds (modes 0, 1).
//
//go:noinline
func atomicIncr(ctr *atomic.Uint64, k uint64) {
	for i := uint64(0); i < k; i++ {
		ctr.Add(1)
	}
}

// atomicIncrPlain adds k to *ctr one load and store at a time (mode 2); not
// inlined, and the counter behind a pointer, so that each increment is a
// real load and store to memory rather than one add of k.
//
//go:noinline
func atomicIncrPlain(ctr *uint64, k uint64) {
	for i := uint64(0); i < k; i++ {
		*ctr++
	}
}

func atomicRun(r *Run) error {
	c := r.Cfg
	threads := int(c.Threads)
	mode := c.Param("mode")
	if mode < 0 || mode > 2 {
		r.Fail("--set mode=%d: expected 0, 1 or 2", mode)
		return nil
	}
	per, extra := uint64(c.Items)/uint64(threads), uint64(c.Items)%uint64(threads)
	var shared atomicPadded
	mine := make([]atomicPadded, threads)
	var ops atomic.Uint64
	every := int64(0)
	if c.LatSample > 0 {
		every = (c.LatSample + atomicBatch - 1) / atomicBatch
	}
	for i := 0; i < threads; i++ {
		id := i
		r.Spawn("incr", func(t *Thread) {
			n := per
			if uint64(id) < extra {
				n++
			}
			ctr := &mine[id]
			if mode == 0 {
				ctr = &shared
			}
			untilSample := int64(0)
			var done uint64
			t.Phase("increment")
			for r.More(done, n) {
				k := uint64(atomicBatch)
				if c.Duration <= 0 && n-done <= atomicBatch {
					k = n - done
				}
				var t0 uint64
				timed := false
				if every > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = every
						timed = true
						t0 = Now()
					}
				}
				if mode == 2 {
					atomicIncrPlain(&ctr.plain, k)
				} else {
					atomicIncr(&ctr.v, k)
				}
				if timed {
					t.Hist.Record(Since(t0))
				}
				done += k
			}
			ops.Add(done)
			t.Ops = done
			t.Phase("done")
		})
	}
	r.Start()
	r.WaitDuration()
	r.Join()
	total := shared.v.Load()
	for i := range mine {
		total += mine[i].v.Load() + mine[i].plain
	}
	if total != ops.Load() {
		r.Fail("total: counters sum to %d, goroutines did %d increments", total, ops.Load())
	}
	if c.Duration <= 0 && ops.Load() != uint64(c.Items) {
		r.Fail("count: %d increments done, asked for %d", ops.Load(), c.Items)
	}
	r.Ops = ops.Load()
	return nil
}

func init() {
	register(&Pattern{Name: "atomic", Params: []string{"mode"}, Run: atomicRun})
}
