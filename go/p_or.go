package main

// or: combine K done channels into one that is closed as soon as any of
// them is. The or-channel of the seed catalogue (flows_or; the playbook's
// `func or(channels ...<-chan struct{}) <-chan struct{}`), the twin of
// workloads/or.c:
//
//	recursive (--set impl=0, the seed's): or(c0..cn-1) returns c0 itself
//	  for n = 1; otherwise it makes orDone and starts one helper, which for
//	  n = 2 selects on c0, c1 and for n >= 3 selects on c0, c1, c2 and on
//	  or(c3..cn-1, orDone), then closes orDone: floor(K/2) helpers for
//	  K >= 2;
//	flat (--set impl=1): one helper selecting over all K sources
//	  (reflect.Select: Go's select over a number of channels known only at
//	  run time).
//
// As in the C, a helper is a goroutine per level of the recursion, spawned
// once (r.Spawn, so that it counts in the thread column) and woken for each
// round by a send on its own channel (capacity 1) -- the "go helper()" of
// the seed. A done event is a chan struct{}, fired by close.
//
// One op: a round: K fresh sources, or() of them (all helpers armed), one
// source closed (round r closes source r mod K), the combined channel seen
// closed. Latency: the source's close -> the caller's receive on the
// combined channel returns. --items rounds, or --duration.
//
// Parameters: --set sources=K (default 8), --set impl=0 recursive | 1 flat.
// Metrics: helpers, exit_mean_ns / exit_max_ns (the combined fire -> the
// last helper of the round exited).
//
// Variant seed: the recursive or without orDone in the recursive call
// (`or(channels[3:]...)`), so a helper below the level that fired waits for
// sources that never fire. The run fails ("leaked N of H helper threads")
// 1 s after the combined fire, then releases them (their select also
// watches an internal ctx, reap, that only the harness cancels).
//
// Invariants (as the C, every round): the combined channel is closed
// exactly once and never before a source; the input a helper's select
// returned is closed; the combined fire comes within 1 s of the source;
// every helper of the round exits within 1 s of the combined fire, and as
// many helpers ran as the recursion needs; every goroutine ended.

import (
	"context"
	"reflect"
	"sync/atomic"
	"time"
)

const orBound = time.Second // fire -> combined, combined -> helpers exited

// orHelpersFor: helpers one or() of n inputs starts: recursive floor(n/2)
// for n >= 2 (each level passes n-3 inputs plus its orDone down), the
// seed's 1 + orHelpersFor(n-3), flat 1.
func orHelpersFor(n int, flat, seed bool) int {
	if n < 2 {
		return 0
	}
	if flat || n == 2 {
		return 1
	}
	if seed {
		return 1 + orHelpersFor(n-3, false, seed)
	}
	return 1 + orHelpersFor(n-2, false, seed)
}

// orFired: the channel has been closed (a done channel is never sent on).
func orFired(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

// orCount is a WaitGroup whose Wait can give up (the C's cp_wg_wait with a
// bounded ctx): each done() is a token on a channel, wait() takes the tokens
// still due. add and wait belong to one goroutine (the caller).
type orCount struct {
	ch   chan struct{}
	need int
}

func (w *orCount) add(n int) { w.need += n }
func (w *orCount) done()     { w.ch <- struct{}{} }

func (w *orCount) wait(ctx context.Context) bool {
	for w.need > 0 {
		select {
		case <-w.ch:
			w.need--
		case <-ctx.Done():
			return false
		}
	}
	return true
}

func (w *orCount) waitAll() {
	for ; w.need > 0; w.need-- {
		<-w.ch
	}
}

type orLevel struct {
	spawn chan uint64     // "go helper()": a round number, capacity 1
	in    []chan struct{} // its inputs, written by the parent before the spawn
	n     int
	done  chan struct{} // its orDone, made by the parent (as or() does)
	rest  []chan struct{}
	cases []reflect.SelectCase // flat: the K inputs and reap
}

func orRun(r *Run) error {
	c := r.Cfg
	k := int(c.Param("sources"))
	flat := c.Param("impl") == 1
	seed := c.Variant == "seed"
	H := orHelpersFor(k, flat, seed)
	reap, release := context.WithCancel(context.Background()) // never cancelled by the pattern
	defer release()
	armed := &orCount{ch: make(chan struct{}, H+1)}
	exited := &orCount{ch: make(chan struct{}, H+1)}
	var live, spawned, sourceFired, combinedFires int32
	var lastExit uint64
	var errs Errs
	lv := make([]orLevel, H+1)
	for L := 0; L < H; L++ {
		lv[L].spawn = make(chan uint64, 1)
		lv[L].in = make([]chan struct{}, k+1)
		lv[L].rest = make([]chan struct{}, k+1)
		if flat {
			lv[L].cases = make([]reflect.SelectCase, k+1)
			for i := range lv[L].cases {
				lv[L].cases[i].Dir = reflect.SelectRecv
			}
			lv[L].cases[k].Chan = reflect.ValueOf(reap.Done())
		}
	}

	// or() at recursion level L: the combined channel of in, nil if it can
	// never fire (no inputs: Go's nil channel).
	orMake := func(L int, in []chan struct{}, round uint64) chan struct{} {
		switch len(in) {
		case 0:
			return nil
		case 1:
			return in[0]
		}
		l := &lv[L]
		l.done = make(chan struct{})
		l.n = copy(l.in, in)
		atomic.AddInt32(&spawned, 1)
		l.spawn <- round // capacity 1, drained every round: never blocks long
		return l.done
	}

	for L := 0; L < H; L++ {
		L := L
		l := &lv[L]
		r.Spawn("helper", func(t *Thread) {
			var n uint64
			t.Phase("spawn")
			for round := range l.spawn {
				in := l.in[:l.n]
				var below chan struct{}
				if !flat && l.n > 2 {
					nr := copy(l.rest, in[3:])
					if !seed {
						l.rest[nr] = l.done // the seed forgets this
						nr++
					}
					below = orMake(L+1, l.rest[:nr], round)
				}
				t.Phase("select")
				armed.done()
				var got chan struct{} // the input the select returned; nil: reaped
				switch {
				case flat:
					for i, ch := range in { // l.n == k
						l.cases[i].Chan = reflect.ValueOf(ch)
					}
					if i, _, _ := reflect.Select(l.cases); i < k {
						got = in[i]
					}
				case l.n == 2:
					select {
					case <-in[0]:
						got = in[0]
					case <-in[1]:
						got = in[1]
					case <-reap.Done():
					}
				default:
					select {
					case <-in[0]:
						got = in[0]
					case <-in[1]:
						got = in[1]
					case <-in[2]:
						got = in[2]
					case <-below:
						got = below
					case <-reap.Done():
					}
				}
				if got != nil {
					if !orFired(got) {
						errs.note("select returned an input that has not fired, level", uint64(L), 0)
					}
					if atomic.LoadInt32(&sourceFired) == 0 {
						errs.note("a helper fired before any source fired, level", uint64(L), 0)
					}
					if L == 0 {
						atomic.AddInt32(&combinedFires, 1)
					}
					close(l.done) // defer close(orDone)
					n++
				}
				for now := Now(); ; {
					tl := atomic.LoadUint64(&lastExit)
					if now <= tl || atomic.CompareAndSwapUint64(&lastExit, tl, now) {
						break
					}
				}
				atomic.AddInt32(&live, -1)
				exited.done() // last touch of the round's channels
				t.Phase("spawn")
			}
			t.Ops = n
			t.Phase("done")
		})
	}

	var rounds uint64
	r.Spawn("caller", func(t *Thread) {
		n := uint64(c.Items)
		failed := false
		fail := func(format string, a ...interface{}) {
			failed = true
			r.Fail(format, a...)
		}
		// Release the helpers a leak (or a lost fire) left blocked, and wait for them.
		reapRound := func() {
			release()
			armed.waitAll()
			exited.waitAll()
		}
		var exits, exitSum, exitMax uint64
		// Every helper of the round exited within 1 s (else the leak is
		// reported and they are released), the combined channel was closed
		// once and the recursion ran all its helpers. false if it failed.
		finishRound := func(round, tComb uint64, fire int) bool {
			ok := true
			if H > 0 {
				bound, cancel := context.WithTimeout(context.Background(), orBound)
				done := exited.wait(bound)
				cancel()
				if !done {
					fail("leaked %d of %d helper threads: still blocked %.3f s after the combined fire "+
						"(round %d, source %d of %d fired)", atomic.LoadInt32(&live), H,
						float64(Since(tComb))/1e9, round, fire, k)
					reapRound()
					ok = false
				} else {
					if tComb != 0 { // a round whose fire was never seen has no exit time (as or.c)
						dt := Diff(atomic.LoadUint64(&lastExit), tComb)
						exits++
						exitSum += dt
						if dt > exitMax {
							exitMax = dt
						}
					}
					if f := atomic.LoadInt32(&combinedFires); f != 1 {
						fail("round %d: the combined event was fired %d times", round, f)
					}
					if s := atomic.LoadInt32(&spawned); int(s) != H {
						fail("round %d: %d helpers ran, the recursion needs %d", round, s, H)
					}
				}
			}
			return ok && !failed
		}
		untilSample := int64(0)
		var round uint64
		havePrev := false
		var prevRound, prevComb uint64
		var prevFire int
		for ; r.More(round, n); round++ {
			src := make([]chan struct{}, k)
			for i := range src {
				src[i] = make(chan struct{})
			}
			t.Phase("wait helpers")
			if havePrev {
				havePrev = false
				if !finishRound(prevRound, prevComb, prevFire) {
					break
				}
			}
			atomic.StoreInt32(&sourceFired, 0)
			atomic.StoreInt32(&combinedFires, 0)
			atomic.StoreInt32(&spawned, 0)
			atomic.StoreUint64(&lastExit, 0)
			atomic.StoreInt32(&live, int32(H))
			armed.add(H)
			exited.add(H)

			t.Phase("or()")
			bound, cancel := context.WithTimeout(context.Background(), orBound)
			comb := orMake(0, src, round)
			ok, fire := true, int(round%uint64(k))
			if !armed.wait(bound) {
				fail("round %d: %d helpers not started within 1 s", round, H)
				ok = false
			} else if comb == nil {
				fail("round %d: or() of %d sources returned no event", round, k)
				ok = false
			} else if orFired(comb) {
				fail("round %d: the combined event fired before any source", round)
				ok = false
			}
			var tComb uint64
			if ok {
				t.Phase("wait combined")
				atomic.StoreInt32(&sourceFired, 1)
				t0 := Now()
				close(src[fire])
				select {
				case <-comb:
					tComb = Now()
					if c.LatSample > 0 {
						if untilSample--; untilSample <= 0 {
							untilSample = c.LatSample
							t.Hist.Record(Diff(tComb, t0))
						}
					}
				case <-bound.Done():
					tComb = Now()
					fail("round %d: the combined event did not fire within 1 s of source %d (%v)", round, fire,
						bound.Err())
					ok = false
				}
			}
			cancel()
			prevRound, prevComb, prevFire, havePrev = round, tComb, fire, true
			if !ok {
				reapRound()
				break
			}
			errs.mu.Lock()
			e := errs.n
			errs.mu.Unlock()
			if e > 0 {
				break
			}
		}
		t.Phase("wait helpers")
		errs.mu.Lock()
		e := errs.n
		errs.mu.Unlock()
		if havePrev && finishRound(prevRound, prevComb, prevFire) && e == 0 && c.Duration <= 0 && round != n {
			fail("ran %d rounds, asked for %d", round, n)
		}
		for L := 0; L < H; L++ {
			close(lv[L].spawn)
		}
		t.Ops = round
		rounds = round
		if exits > 0 {
			r.Metric("exit_mean_ns", float64(exitSum)/float64(exits))
			r.Metric("exit_max_ns", float64(exitMax))
		}
		t.Phase("done")
	})
	r.Start()
	r.WaitDuration()
	r.Join()

	if errs.n > 0 {
		r.Fail("%s %d (%d errors)", errs.first, errs.a, errs.n)
	}
	r.Metric("helpers", float64(H))
	r.Ops = rounds
	return nil
}

func init() {
	register(&Pattern{
		Name:     "or",
		Params:   []string{"sources", "impl"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"helpers", "exit_mean_ns", "exit_max_ns"},
		Run:      orRun,
	})
}
