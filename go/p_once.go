package main

// once: rounds of T goroutines racing on a fresh sync.Once to initialise a
// value, the twin of workloads/once.c (seed primitives_once). Each round the
// coordinator makes a fresh Once and hands a token (the round) to each racer
// through a channel of capacity T; racers call Do, read the value, and Done
// a WaitGroup the coordinator waits on. The initialiser does --work-ns
// first, so that late callers must wait for it.
//
// One op: one Do call. Latency: time in Do.
//
// Invariants (as the C original): fn ran exactly once per round (a per-round
// counter); every caller saw the initialised value after Do returned (a
// plain field: the Once must publish it); every goroutine ended.

import (
	"sync"
	"sync/atomic"
)

type onceRound struct {
	once   sync.Once
	runs   atomic.Int32
	value  uint64 // plain: published by the Once
	want   uint64
	work   int64
	initFn func() // the initialiser, made once per round
}

func onceRun(r *Run) error {
	c := r.Cfg
	n := int(c.Threads)
	if n < 1 {
		r.Fail("--threads must be >= 1")
		return nil
	}
	tokens := make(chan *onceRound, n)
	var wg sync.WaitGroup
	var errors, rounds atomic.Uint64
	for i := 0; i < n; i++ {
		r.Spawn("racer", func(t *Thread) {
			untilSample := int64(0)
			var k uint64
			t.Phase("token")
			for rd := range tokens {
				var t0 uint64
				if c.LatSample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = c.LatSample
						t0 = Now()
					}
				}
				rd.once.Do(rd.initFn)
				if t0 != 0 {
					t.Hist.Record(Since(t0))
				}
				if rd.value != rd.want {
					errors.Add(1)
				}
				k++
				wg.Done()
			}
			t.Ops = k
			t.Phase("done")
		})
	}
	r.Spawn("coordinator", func(t *Thread) {
		var round uint64
		for ; r.More(round, uint64(c.Items)); round++ {
			rd := &onceRound{want: Mix(round) | 1, work: c.WorkNs}
			rd.initFn = func() {
				if rd.work > 0 {
					Work(rd.work)
				}
				rd.runs.Add(1)
				rd.value = rd.want
			}
			t.Phase("race")
			wg.Add(n)
			for i := 0; i < n; i++ {
				tokens <- rd
			}
			wg.Wait()
			if rd.runs.Load() != 1 {
				errors.Add(1)
			}
		}
		close(tokens)
		rounds.Store(round)
		t.Ops = 0
		t.Phase("done")
	})
	r.Start()
	r.WaitDuration()
	r.Join()
	if e := errors.Load(); e > 0 {
		r.Fail("%d violations: fn ran other than once, or a caller saw no value", e)
	}
	if c.Duration <= 0 && rounds.Load() != uint64(c.Items) {
		r.Fail("ran %d rounds, asked for %d", rounds.Load(), c.Items)
	}
	r.Ops = rounds.Load() * uint64(n)
	return nil
}

func init() {
	register(&Pattern{Name: "once", Run: onceRun})
}
