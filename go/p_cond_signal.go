package main

// cond_signal: a signaller hands out tickets one at a time to T waiters
// through a sync.Cond, the twin of workloads/cond_signal.c (seed
// primitives_signal; Go's BenchmarkCond1/2 ping-pong, sync/cond_test.go,
// with T waiters). The signaller bumps the ticket count under the mutex and
// Signals one waiter, then Waits on a second Cond until the ticket is taken;
// --work-ns between tickets, outside the lock.
//
// One op: one ticket consumed. Latency: Signal -> the taker holds the ticket
// (woken and re-locked the mutex), 1 in LatSample tickets.
//
// Invariants (as the C original): every ticket is consumed exactly once
// (count and sum of ticket numbers), and in count mode exactly --items are;
// one Signal wakes at most one waiter (the Wait returns before the closing
// Broadcast are at most the Signals; a woken waiter may find the ticket
// already taken by one that never slept: allowed, as sync.Cond documents);
// no waiter sleeps forever (all end after the closing Broadcast).

import "sync"

type condSignalState struct {
	mu    sync.Mutex
	ready *sync.Cond // waiters: a ticket is available
	taken *sync.Cond // signaller: the ticket was consumed
	// under mu:
	avail                           uint64 // tickets issued and not yet taken: 0 or 1
	nextTicket                      uint64 // number of the available ticket
	issued, signals, wakesBeforeEnd uint64
	signalTs                        uint64 // when the current ticket was signalled, 0: not sampled
	closed                          bool
	consumed, consumedSum           uint64
}

func condSignalRun(r *Run) error {
	c := r.Cfg
	s := &condSignalState{}
	s.ready = sync.NewCond(&s.mu)
	s.taken = sync.NewCond(&s.mu)
	waiters := make([]*Thread, 0, c.Threads)
	for i := int64(0); i < c.Threads; i++ {
		waiters = append(waiters, r.Spawn("waiter", func(t *Thread) {
			var done uint64
			s.mu.Lock()
			for {
				t.Phase("wait")
				for s.avail == 0 && !s.closed {
					s.ready.Wait()
					if !s.closed {
						s.wakesBeforeEnd++
					}
				}
				if s.avail == 0 {
					break // closed, nothing left
				}
				s.avail--
				s.consumed++
				s.consumedSum += s.nextTicket
				if s.signalTs != 0 {
					t.Hist.Record(Since(s.signalTs))
				}
				done++
				s.taken.Signal()
			}
			s.mu.Unlock()
			t.Ops = done
			t.Phase("done")
		}))
	}
	r.Spawn("signaller", func(t *Thread) {
		sample, work := c.LatSample, c.WorkNs
		n := uint64(c.Items)
		var untilSample int64
		i := uint64(0)
		s.mu.Lock()
		for ; r.More(i, n); i++ {
			t.Phase("wait taken")
			for s.avail != 0 {
				s.taken.Wait()
			}
			t.Phase("signal")
			s.avail = 1
			s.nextTicket = i + 1
			s.issued++
			s.signalTs = 0
			if sample > 0 {
				if untilSample--; untilSample <= 0 {
					untilSample = sample
					s.signalTs = Now()
				}
			}
			s.ready.Signal()
			s.signals++
			if work > 0 { // between tickets, outside the lock
				s.mu.Unlock()
				Work(work)
				s.mu.Lock()
			}
		}
		for s.avail != 0 {
			s.taken.Wait()
		}
		s.closed = true
		s.ready.Broadcast()
		s.mu.Unlock()
		t.Phase("done")
	})
	r.Start()
	r.WaitDuration()
	r.Join()

	wantSum := s.issued * (s.issued + 1) / 2
	if s.consumed != s.issued || s.consumedSum != wantSum {
		r.Fail("tickets: issued %d, consumed %d (sum %d, want %d)", s.issued, s.consumed, s.consumedSum, wantSum)
	}
	if s.wakesBeforeEnd > s.signals {
		r.Fail("%d wake-ups from %d signals: a signal woke more than one waiter", s.wakesBeforeEnd, s.signals)
	}
	if c.Duration <= 0 && s.issued != uint64(c.Items) {
		r.Fail("issued %d tickets, asked for --items=%d", s.issued, c.Items)
	}
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
	r.Ops = s.consumed
	return nil
}

func init() {
	register(&Pattern{Name: "cond_signal", Run: condSignalRun})
}
