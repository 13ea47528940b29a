package main

// null: the harness's own per-op cost, the twin of workloads/null.c. Each of
// T goroutines does, per item, everything the chan twin does around its
// channel operations (the stop/count check, the tag and filler, latency
// sampling 1 in LatSample, the FIFO and integrity checks, the checksum),
// moving the item through a local buffer instead of a channel. chan's ns/op
// minus null's at the same --payload and --lat-sample is what the channel
// itself costs, in Go as in C.
//
// One op: one item. Latency: send-side timestamp -> receive-side record (no
// hand-off: the clock's own cost, two reads).
//
// Invariants (as the C original): count (received == sent, == --items in
// count mode), checksum of Mix(tag), per-goroutine order and integrity of
// every item, every goroutine ended.

import (
	"encoding/binary"
	"sync/atomic"
)

func nullRun(r *Run) error {
	c := r.Cfg
	threads := uint64(c.Threads)
	payload := int(c.Payload)
	per, extra := uint64(c.Items)/threads, uint64(c.Items)%threads
	var sent, recv, sentSum, recvSum, errors uint64
	for i := uint64(0); i < threads; i++ {
		id := i
		r.Spawn("null", func(t *Thread) {
			n := per
			if id < extra {
				n++
			}
			slot := make([]byte, payload) // the "channel": on the heap (its size is a knob), really written and read
			var seq, sumIn, sumOut, errs uint64
			untilSample := int64(0)
			last := int64(-1)
			t.Phase("loop")
			for ; r.More(seq, n); seq++ {
				tag := id<<40 | seq
				var ts uint64
				if c.LatSample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = c.LatSample
						ts = Now()
					}
				}
				binary.LittleEndian.PutUint64(slot, tag)
				if payload >= 16 {
					binary.LittleEndian.PutUint64(slot[8:], ts)
				}
				if payload > 16 {
					slot[payload-1] = fillByte(tag)
				}
				sumIn += Mix(tag)
				// the receive side
				got := binary.LittleEndian.Uint64(slot)
				if payload >= 16 {
					if ts := binary.LittleEndian.Uint64(slot[8:]); ts != 0 {
						t.Hist.Record(Diff(Now(), ts))
					}
				}
				sq := int64(got & (1<<40 - 1))
				if sq <= last {
					errs++
				}
				last = sq
				if payload > 16 && slot[payload-1] != fillByte(got) {
					errs++
				}
				sumOut += Mix(got)
			}
			atomic.AddUint64(&sent, seq)
			atomic.AddUint64(&recv, seq)
			atomic.AddUint64(&sentSum, sumIn)
			atomic.AddUint64(&recvSum, sumOut)
			atomic.AddUint64(&errors, errs)
			t.Ops = seq
			t.Phase("done")
		})
	}
	r.Start()
	r.WaitDuration()
	r.Join()
	if recv != sent || recvSum != sentSum {
		r.Fail("checksum: %d items out, %d in, sums differ or not", recv, sent)
	}
	if errors > 0 {
		r.Fail("order or integrity: %d items out of order or torn", errors)
	}
	if c.Duration <= 0 && sent != uint64(c.Items) {
		r.Fail("count: %d items, asked for %d", sent, c.Items)
	}
	r.Ops = recv
	return nil
}

func init() {
	register(&Pattern{Name: "null", Run: nullRun})
}
