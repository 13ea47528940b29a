package main

// select_timeout: P producers of variable speed send items on two channels,
// high and low priority; one consumer drains them with a priority select,
// the twin of workloads/select_timeout.c (seed 001, "Select with Timeout and
// Default": the timeout select, the non-blocking select and the priority
// select). First a non-blocking receive from high (drained first, always),
// else a select over high and low with either a timeout case (one
// time.Timer, Reset for each select: `case <-time.After(d)` without a timer
// per select) or a default case (the consumer then does idle_ns of other
// work and comes back).
//
// Each producer sends its share of --items; an item goes to high with
// probability hi_pct %, else to low (the C's xorshift sequence from Mix(seed
// ^ id)); after an item the producer pauses pause_us with probability
// pause_pct % (a timer raced against ctx.Done()). --set mode=0: every select
// has the timeout case, 1: every select has a default case, 2: they
// alternate. --set cancel_after_ms=T cancels one context that ends producers
// and consumer (without it the context is Background: its Done channel is
// nil and never ready).
//
// One op: one item received (high or low). Latency: from the start of its
// send to its receive (1 in LatSample).
//
// Invariants (as the C original): count and checksum per channel (received
// + left in the channel == sent; left is 0 without a cancel); per-producer
// FIFO on each channel; priority (a high item whose send had returned when
// a low item was taken is received before the next low item); timeouts (the
// tick of the timeout case is never earlier than the deadline the select
// armed: never early, no stale tick of an earlier arming; Go 1.19's timers
// need the Stop-and-drain idiom for that, Go 1.23's do it themselves);
// cancellation (every goroutine has ended within 1 s of the cancel); every
// goroutine ended.
//
// Metrics: timeouts, defaults, beyond_p50_ns / beyond_p99_ns (armed deadline
// -> the consumer's wake-up, when the timeout case fired), overtakes (low
// items taken while a high item was already waiting). On Linux, Go 1.19's
// netpoller sleeps in whole milliseconds (epoll_wait; golang/go#44343), so
// an idle consumer's sub-ms timeout, and a producer's sub-ms pause, wake
// about 1 ms late: beyond_p50_ns is ~1 ms where the C backends' is ~0.1 ms,
// and fewer timeouts fire in a run. That is Go's behaviour, not the twin's.
//
// Variant seed: seed 001's priority loop as written,
//   for { select { case msg := <-high: ... default: select { case msg :=
//   <-high: ... case msg := <-low: ... } } }
// receives without `, ok` and has no exit: once the producers close the
// channels, every receive returns a zero value at once, and the loop spins
// on phantom messages. Here `ok` only counts the phantoms; after 10000 of
// them the consumer gives up and the run fails, naming the count.

import (
	"context"
	"sync/atomic"
	"time"
)

const (
	stHi, stLo     = 0, 1
	stTagShift     = 40
	stPhantomLimit = 10000
)

type stItem struct{ tag, ts uint64 }

func selectTimeoutRun(r *Run) error {
	c := r.Cfg
	producers := int(c.Producers)
	seedVariant := c.Variant == "seed"
	mode := c.Param("mode")
	timeout := time.Duration(c.Param("timeout_us")) * time.Microsecond
	hiPct, pausePct := uint64(c.Param("hi_pct")), uint64(c.Param("pause_pct"))
	pause := time.Duration(c.Param("pause_us")) * time.Microsecond
	idle := c.Param("idle_ns")
	cancelMs := c.Param("cancel_after_ms")
	per, extra := uint64(c.Items)/uint64(producers), uint64(c.Items)%uint64(producers)

	chans := [2]chan stItem{make(chan stItem, c.Capacity), make(chan stItem, c.Capacity)}
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if cancelMs > 0 {
		ctx, cancel = context.WithCancel(context.Background())
	}
	defer cancel()
	done := ctx.Done() // nil without a cancel: never ready
	live := int32(producers)
	var hiSentDone uint64       // atomic: high items whose send has returned
	var sent, sentSum [2]uint64 // atomic
	var recv, recvSum [2]uint64 // the consumer's, read after Join
	var timeouts, defaults, overtakes, phantoms uint64
	beyond := &Hist{}
	var errs Errs

	r.Spawn("consumer", func(t *Thread) {
		ch := chans // a received-from channel is set to nil once closed
		last := [2][]uint64{make([]uint64, producers), make([]uint64, producers)}
		hiPending, hiRecvThen := false, uint64(0)
		take := func(w int, it stItem) {
			if it.ts != 0 {
				t.Hist.Record(Since(it.ts))
			}
			pid, seq := it.tag>>stTagShift, it.tag&(1<<stTagShift-1)
			if pid >= uint64(producers) {
				errs.note("item from an unknown producer (producer, seq)", pid, seq)
			} else if seq != last[w][pid] {
				errs.note("per-producer FIFO broken (seq, expected)", seq, last[w][pid])
			} else {
				last[w][pid] = seq + 1
			}
			recv[w]++
			recvSum[w] += Mix(it.tag)
			if w == stLo {
				// hiSentDone counts sends that returned: such an item is in
				// the high channel (or was received), so the next round's
				// non-blocking receive from high must find it
				if hiPending && recv[stHi] == hiRecvThen {
					errs.note("priority broken: a high item waited across two low receives (high received, sent)",
						recv[stHi], atomic.LoadUint64(&hiSentDone))
				}
				hiPending = atomic.LoadUint64(&hiSentDone) > recv[stHi]
				hiRecvThen = recv[stHi]
				if hiPending {
					overtakes++
				}
			}
		}
		tm := time.NewTimer(timeout)
		if !tm.Stop() {
			<-tm.C
		}
		stopTimer := func() { // Stop, and drain a tick that fired meanwhile (Go < 1.23)
			if !tm.Stop() {
				<-tm.C
			}
		}
	loop:
		for round := uint64(0); ch[stHi] != nil || ch[stLo] != nil; round++ {
			var it stItem
			var ok bool
			// priority: high first, without blocking
			if ch[stHi] != nil {
				select {
				case it, ok = <-ch[stHi]:
					if ok {
						take(stHi, it)
						continue
					}
					if !seedVariant {
						ch[stHi] = nil
						continue
					}
					// the seed's `msg := <-high` got a zero value
					if phantoms++; phantoms >= stPhantomLimit {
						break loop
					}
					continue
				default:
				}
			}
			var idx int
			switch {
			case seedVariant:
				// no timeout, no ctx, no `ok` in the seed: a closed channel
				// is a zero message (ok only counts it here)
				select {
				case it, ok = <-ch[stHi]:
					idx = stHi
				case it, ok = <-ch[stLo]:
					idx = stLo
				}
				if !ok {
					if phantoms++; phantoms >= stPhantomLimit {
						break loop
					}
					continue
				}
			case mode == 1 || (mode == 2 && round&1 == 1):
				t.Phase("select default")
				select {
				case it, ok = <-ch[stHi]:
					idx = stHi
				case it, ok = <-ch[stLo]:
					idx = stLo
				default:
					defaults++
					if idle > 0 {
						Work(idle)
					}
					if ctx.Err() != nil {
						break loop
					}
					continue
				}
			default:
				t.Phase("select timeout")
				deadline := time.Now().Add(timeout)
				tm.Reset(timeout)
				select {
				case it, ok = <-ch[stHi]:
					idx = stHi
				case it, ok = <-ch[stLo]:
					idx = stLo
				case tick := <-tm.C:
					now := time.Now()
					if tick.Before(deadline) {
						errs.note("timeout tick earlier than the armed deadline (ns early, timeout ns)",
							uint64(deadline.Sub(tick)), uint64(timeout))
					}
					if d := now.Sub(deadline); d > 0 {
						beyond.Record(uint64(d))
					} else {
						beyond.Record(0)
					}
					timeouts++
					continue
				case <-done:
					stopTimer()
					break loop // cancelled
				}
				stopTimer()
			}
			if !ok {
				ch[idx] = nil
				continue
			}
			take(idx, it)
		}
		tm.Stop()
		t.Ops = recv[stHi] + recv[stLo]
		t.Phase("done")
	})
	for i := 0; i < producers; i++ {
		id := uint64(i)
		r.Spawn("producer", func(t *Thread) {
			n := per
			if id < extra {
				n++
			}
			x := Mix(c.Seed^id) | 1
			var seq, sum [2]uint64
			untilSample := int64(0)
			var pauseTm *time.Timer
			if pause > 0 {
				pauseTm = time.NewTimer(pause)
				if !pauseTm.Stop() {
					<-pauseTm.C
				}
				defer pauseTm.Stop()
			}
			i := uint64(0)
			t.Phase("send")
		send:
			for ; r.More(i, n); i++ {
				x ^= x << 13
				x ^= x >> 7
				x ^= x << 17
				which := stLo
				if x%100 < hiPct {
					which = stHi
				}
				it := stItem{tag: id<<stTagShift | seq[which]}
				if c.LatSample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = c.LatSample
						it.ts = Now()
					}
				}
				select {
				case chans[which] <- it:
				case <-done:
					break send // cancelled
				}
				if which == stHi {
					atomic.AddUint64(&hiSentDone, 1)
				}
				seq[which]++
				sum[which] += Mix(it.tag)
				if pause > 0 && (x>>32)%100 < pausePct {
					t.Phase("pause")
					pauseTm.Reset(pause)
					select {
					case <-pauseTm.C:
					case <-done:
						break send // as the C: this last item is not in the producer's ops
					}
					t.Phase("send")
				}
			}
			for w := 0; w < 2; w++ {
				atomic.AddUint64(&sent[w], seq[w])
				atomic.AddUint64(&sentSum[w], sum[w])
			}
			t.Ops = i
			t.Phase("close")
			if atomic.AddInt32(&live, -1) == 0 {
				close(chans[stHi])
				close(chans[stLo])
			}
			t.Phase("done")
		})
	}
	var cancelledAt uint64
	r.Start()
	if cancelMs > 0 {
		SleepNs(uint64(cancelMs) * 1000000)
		cancelledAt = Now()
		cancel()
	}
	r.WaitDuration()
	r.Join()

	var left, leftSum [2]uint64
	for w := 0; w < 2; w++ {
	drain:
		for {
			select {
			case it, ok := <-chans[w]:
				if !ok {
					break drain
				}
				left[w]++
				leftSum[w] += Mix(it.tag)
			default:
				break drain
			}
		}
	}
	wname := [2]string{"high", "low"}
	if errs.n > 0 {
		r.Fail("%s: %d, %d (%d errors)", errs.first, errs.a, errs.b, errs.n)
	}
	if phantoms > 0 {
		r.Fail("the priority loop took %d zero-value messages from closed channels (received without ok) and "+
			"has no exit: it would spin forever", phantoms)
	}
	for w := 0; w < 2; w++ {
		if recv[w]+left[w] != sent[w] {
			r.Fail("%s channel: received %d + left %d != sent %d", wname[w], recv[w], left[w], sent[w])
		} else if recvSum[w]+leftSum[w] != sentSum[w] {
			r.Fail("%s channel: checksum of received + left != sent", wname[w])
		}
		if cancelMs <= 0 && phantoms == 0 && left[w] > 0 {
			r.Fail("%s channel: %d items left without a cancel", wname[w], left[w])
		}
	}
	if total := sent[stHi] + sent[stLo]; cancelMs <= 0 && c.Duration <= 0 && total != uint64(c.Items) {
		r.Fail("sent %d items, asked for %d", total, c.Items)
	}
	if cancelledAt != 0 && r.TEnd > cancelledAt && r.TEnd-cancelledAt > 1000000000 {
		r.Fail("cancellation took %.3f s to stop every goroutine (bound 1 s)", float64(r.TEnd-cancelledAt)/1e9)
	}
	r.Metric("timeouts", float64(timeouts))
	r.Metric("defaults", float64(defaults))
	if beyond.Count() > 0 {
		r.Metric("beyond_p50_ns", float64(beyond.Percentile(50)))
		r.Metric("beyond_p99_ns", float64(beyond.Percentile(99)))
	}
	r.Metric("overtakes", float64(overtakes))
	r.Ops = recv[stHi] + recv[stLo]
	return nil
}

func init() {
	register(&Pattern{
		Name:     "select_timeout",
		Params:   []string{"mode", "timeout_us", "hi_pct", "pause_pct", "pause_us", "idle_ns", "cancel_after_ms"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"timeouts", "defaults", "beyond_p50_ns", "beyond_p99_ns", "overtakes"},
		Run:      selectTimeoutRun,
	})
}
