package main

// cond_broadcast: T waiters and a broadcaster in rounds, a cyclic barrier on
// a sync.Cond, the twin of workloads/cond_broadcast.c (seed
// primitives_broadcast). Once all T waiters wait for the next generation,
// the broadcaster bumps the generation and Broadcasts; each waiter checks
// that it observed exactly the new generation, then waits for the next.
//
// One op: one round (one Broadcast, T wake-ups). Latency: Broadcast -> each
// waiter's wake-up (holding the mutex again), 1 in LatSample rounds (every
// waiter of a sampled round records).
//
// Invariants (as the C original): every Broadcast wakes every waiter (each
// waiter's count of rounds == the rounds run, and each wake-up finds the
// generation it waited past + 1); no spurious wake-up (a Wait that returns
// finds the generation moved); count mode: exactly --items rounds; every
// goroutine ended.

import "sync"

type condBroadcastState struct {
	mu        sync.Mutex
	genCv     *sync.Cond // waiters: the generation moved
	arrivedCv *sync.Cond // broadcaster: all waiters arrived
	waiters   int
	// under mu:
	gen, ts           uint64 // ts: when gen was broadcast, 0: not sampled
	arrived           int
	closed            bool
	skipped, spurious uint64
}

func condBroadcastRun(r *Run) error {
	c := r.Cfg
	s := &condBroadcastState{waiters: int(c.Threads)}
	s.genCv = sync.NewCond(&s.mu)
	s.arrivedCv = sync.NewCond(&s.mu)
	waiters := make([]*Thread, 0, s.waiters)
	for i := 0; i < s.waiters; i++ {
		waiters = append(waiters, r.Spawn("waiter", func(t *Thread) {
			var rounds uint64
			s.mu.Lock()
			for {
				mine := s.gen
				if s.arrived++; s.arrived == s.waiters {
					s.arrivedCv.Signal()
				}
				t.Phase("wait")
				for {
					s.genCv.Wait()
					if s.gen != mine || s.closed {
						break
					}
					s.spurious++
				}
				if s.gen == mine {
					break // closed
				}
				if s.ts != 0 {
					t.Hist.Record(Since(s.ts))
				}
				if s.gen != mine+1 {
					s.skipped++
				}
				rounds++
				if s.closed {
					break
				}
			}
			s.mu.Unlock()
			t.Ops = rounds
			t.Phase("done")
		}))
	}
	bc := r.Spawn("broadcaster", func(t *Thread) {
		sample := c.LatSample
		n := uint64(c.Items)
		var untilSample int64
		i := uint64(0)
		s.mu.Lock()
		for ; r.More(i, n); i++ {
			t.Phase("wait arrivals")
			for s.arrived < s.waiters {
				s.arrivedCv.Wait()
			}
			t.Phase("broadcast")
			s.arrived = 0
			s.gen++
			s.ts = 0
			if sample > 0 {
				if untilSample--; untilSample <= 0 {
					untilSample = sample
					s.ts = Now()
				}
			}
			s.genCv.Broadcast()
		}
		// Close only once everyone has seen the last generation (arrived again).
		for s.arrived < s.waiters {
			s.arrivedCv.Wait()
		}
		s.closed = true
		s.genCv.Broadcast()
		s.mu.Unlock()
		t.Ops = i
		t.Phase("done")
	})
	r.Start()
	r.WaitDuration()
	r.Join()

	rounds := bc.Ops
	var mx uint64
	mn := ^uint64(0)
	for _, t := range waiters {
		if t.Ops < mn {
			mn = t.Ops
		}
		if t.Ops > mx {
			mx = t.Ops
		}
	}
	if len(waiters) == 0 {
		mn = 0
	}
	r.Fair(mn, mx)
	if s.skipped > 0 {
		r.Fail("%d wake-ups skipped a generation", s.skipped)
	}
	if s.spurious > 0 {
		r.Fail("%d spurious wake-ups (generation unchanged)", s.spurious)
	}
	if s.waiters > 0 && (mn != rounds || mx != rounds) {
		r.Fail("a broadcast missed a waiter: %d rounds, waiters saw %d..%d", rounds, mn, mx)
	}
	if c.Duration <= 0 && rounds != uint64(c.Items) {
		r.Fail("%d rounds, asked for --items=%d", rounds, c.Items)
	}
	r.Ops = rounds
	return nil
}

func init() {
	register(&Pattern{Name: "cond_broadcast", Run: condBroadcastRun})
}
