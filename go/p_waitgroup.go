package main

// waitgroup: rounds of fork/join on a sync.WaitGroup, the twin of
// workloads/waitgroup.c (seed primitives_waitgroup): the coordinator Adds N,
// N workers each do --work-ns and Done, the coordinator Waits; then the next
// round. Workers are started once and handed a token per round through a
// channel of capacity N (as the C: starting goroutines per round would
// measure the go statement).
//
// One op: one round. Latency: from the last Done (its timestamp, taken just
// before it) to Wait returning in the coordinator.
//
// Invariants (as the C original): Wait returns only after all N Dones of its
// round (a counter bumped before each Done == N * rounds when each Wait
// returns); every round completes; every goroutine ended.

import (
	"sync"
	"sync/atomic"
)

func waitgroupRun(r *Run) error {
	c := r.Cfg
	n := int(c.Threads)
	if n < 1 {
		r.Fail("--threads must be >= 1")
		return nil
	}
	var wg sync.WaitGroup
	tokens := make(chan uint64, n)
	var dones, lastDone, errors, rounds atomic.Uint64
	for i := 0; i < n; i++ {
		r.Spawn("worker", func(t *Thread) {
			var k uint64
			t.Phase("token")
			for range tokens {
				if c.WorkNs > 0 {
					Work(c.WorkNs)
				}
				dones.Add(1)
				now := Now()
				for m := lastDone.Load(); now > m && !lastDone.CompareAndSwap(m, now); m = lastDone.Load() {
				}
				wg.Done()
				k++
			}
			t.Ops = k
			t.Phase("done")
		})
	}
	r.Spawn("coordinator", func(t *Thread) {
		untilSample := int64(0)
		var round uint64
		for ; r.More(round, uint64(c.Items)); round++ {
			t.Phase("fork")
			wg.Add(n)
			for i := 0; i < n; i++ {
				tokens <- round
			}
			t.Phase("wait")
			wg.Wait()
			end := Now()
			// each bump precedes its Done, and Done happens before Wait returns
			if dones.Load() != (round+1)*uint64(n) {
				errors.Add(1)
			}
			if c.LatSample > 0 {
				if untilSample--; untilSample <= 0 {
					untilSample = c.LatSample
					t.Hist.Record(Diff(end, lastDone.Load()))
				}
			}
		}
		close(tokens)
		rounds.Store(round)
		t.Ops = round
		t.Phase("done")
	})
	r.Start()
	r.WaitDuration()
	r.Join()
	if e := errors.Load(); e > 0 {
		r.Fail("%d rounds where Wait returned before all Dones (or failed)", e)
	}
	if c.Duration <= 0 && rounds.Load() != uint64(c.Items) {
		r.Fail("ran %d rounds, asked for %d", rounds.Load(), c.Items)
	}
	if dones.Load() != rounds.Load()*uint64(n) {
		r.Fail("%d Dones for %d rounds of %d", dones.Load(), rounds.Load(), n)
	}
	r.Ops = rounds.Load()
	return nil
}

func init() {
	register(&Pattern{Name: "waitgroup", Run: waitgroupRun})
}
