package main

// chan: P producers -> one channel -> C consumers, the twin of
// workloads/chan.c (Go's BenchmarkChanProdCons shape). One op: one item
// received; latency: send start -> receive end, 1 in LatSample items.
// Item: 8-byte tag (producer << 40 | seq), the send timestamp when the
// payload has room (>= 16 bytes; open loop: intended at 8, actual at 16),
// then a filler byte derived from the tag at the end.
//
// Invariants (as the C original): count, checksum of Mix(tag), per-producer
// FIFO, integrity of the filler, every goroutine ended.

import (
	"encoding/binary"
	"sync/atomic"
)

const chanTagShift = 40

var chanRacy int // CPBENCH_GO_FAULT=race: a data race for cpbench stress --impl=go to find

func fillByte(tag uint64) byte { return byte(Mix(tag) | 1) }

func chanRunT[T Payload](r *Run) error {
	c := r.Cfg
	producers, consumers := int(c.Producers), int(c.Consumers)
	var zero T
	payload := len(zero)
	hdr := 16
	if c.Rate > 0 {
		hdr = 24
	}
	per, extra := uint64(c.Items)/uint64(producers), uint64(c.Items)%uint64(producers)
	ch := make(chan T, c.Capacity)
	var live int32 = int32(producers)
	var sent, sentSum, recv, recvSum uint64
	var errs Errs
	// the negative controls, decided once, not per item
	racy, hang, lose := faultName == "race", faultName == "hang", faultName == "lose"
	for i := 0; i < consumers; i++ {
		r.Spawn("consumer", func(t *Thread) {
			last := make([]int64, producers)
			for j := range last {
				last[j] = -1
			}
			var n, sum uint64
			t.Phase("recv")
			for it := range ch {
				b := bytesOf(&it)
				tag := binary.LittleEndian.Uint64(b)
				if payload >= 16 {
					if ts := binary.LittleEndian.Uint64(b[8:]); ts != 0 {
						now := Now()
						t.Hist.Record(Diff(now, ts))
						if t.HistU != nil {
							t.HistU.Record(Diff(now, binary.LittleEndian.Uint64(b[16:])))
						}
					}
				}
				pid, seq := tag>>chanTagShift, int64(tag&(1<<chanTagShift-1))
				if pid >= uint64(producers) {
					errs.note("item from an unknown producer (producer, seq)", pid, uint64(seq))
				} else {
					if seq <= last[pid] {
						errs.note("per-producer FIFO broken (seq, after)", uint64(seq), uint64(last[pid]))
					}
					last[pid] = seq
				}
				if payload > hdr && b[payload-1] != fillByte(tag) {
					errs.note("torn item: filler does not match tag (tag, byte)", tag, uint64(b[payload-1]))
				}
				if racy {
					chanRacy++ // negative control for -race: unsynchronised with the producers' increment
				}
				if hang && r.Fault("hang") {
					select {} // negative control for the watchdog: stops receiving for good
				}
				if lose && r.Fault("lose") {
					continue // negative control: an item received but not counted
				}
				sum += Mix(tag)
				n++
				if c.WorkNs > 0 {
					Work(c.WorkNs)
				}
			}
			atomic.AddUint64(&recv, n)
			atomic.AddUint64(&recvSum, sum)
			t.Ops = n
			t.Phase("done")
		})
	}
	for i := 0; i < producers; i++ {
		id := uint64(i)
		r.Spawn("producer", func(t *Thread) {
			n := per
			if id < extra {
				n++
			}
			var interval, phase uint64
			if c.Rate > 0 {
				interval = uint64(float64(producers) * 1e9 / c.Rate)
				phase = uint64(float64(id) * 1e9 / c.Rate)
			}
			var it T
			b := bytesOf(&it)
			var seq, sum uint64
			untilSample := int64(0)
			t.Phase("send")
			for ; r.More(seq, n); seq++ {
				tag := id<<chanTagShift | seq
				binary.LittleEndian.PutUint64(b, tag)
				var intended uint64
				if interval != 0 {
					if intended = r.Pace(seq, interval, phase); intended == 0 {
						break
					}
				}
				if payload >= 16 {
					var ts, actual uint64
					if c.LatSample > 0 {
						if untilSample--; untilSample <= 0 {
							untilSample = c.LatSample
							actual = Now()
							ts = actual
							if interval != 0 {
								ts = intended
							}
						}
					}
					binary.LittleEndian.PutUint64(b[8:], ts)
					if interval != 0 {
						binary.LittleEndian.PutUint64(b[16:], actual)
					}
				}
				if payload > hdr {
					b[payload-1] = fillByte(tag)
				}
				ch <- it
				if racy {
					chanRacy++
				}
				sum += Mix(tag)
			}
			atomic.AddUint64(&sent, seq)
			atomic.AddUint64(&sentSum, sum)
			t.Ops = seq
			t.Phase("close")
			if atomic.AddInt32(&live, -1) == 0 {
				close(ch)
			}
			t.Phase("done")
		})
	}
	r.Start()
	r.WaitDuration()
	r.Join()
	if errs.n > 0 {
		r.Fail("%s: %d, %d (%d errors)", errs.first, errs.a, errs.b, errs.n)
	}
	if recv != sent {
		r.Fail("count: received %d items, sent %d", recv, sent)
	} else if recvSum != sentSum {
		r.Fail("checksum: received items' sum %016x != sent %016x", recvSum, sentSum)
	}
	if c.Duration <= 0 && sent != uint64(c.Items) {
		r.Fail("count: sent %d items, asked for %d", sent, c.Items)
	}
	r.Ops = recv
	return nil
}

func init() {
	register(&Pattern{Name: "chan", OpenLoop: true, Payloads: PayloadSizes, Run: BySize{
		8: chanRunT[[8]byte], 16: chanRunT[[16]byte], 24: chanRunT[[24]byte], 32: chanRunT[[32]byte],
		64: chanRunT[[64]byte], 128: chanRunT[[128]byte], 256: chanRunT[[256]byte],
		1024: chanRunT[[1024]byte], 4096: chanRunT[[4096]byte],
	}.run})
}
