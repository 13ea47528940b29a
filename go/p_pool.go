package main

// pool: T goroutines each loop Get -> write --payload bytes -> (--work-ns)
// -> Put on one sync.Pool, the twin of workloads/pool.c (seed
// primitives_pool; Go's BenchmarkPool). --set hold=K gets K objects before
// putting them back, as BenchmarkPoolOverflow does, so that objects overflow
// the P's private slot to the shared chain and come back, possibly to
// another goroutine (hold=1 keeps reusing the P's private object). --set
// alloc=1 runs the same loop on plain allocation instead (make, and the
// garbage collector in place of free), so the pool is compared with the
// allocator under one harness.
//
// The pool holds *[]byte (a pointer, so that Put does not allocate); its
// New makes a buffer of --payload bytes (at least 8), so Get never returns
// nil.
//
// One op: one Get+Put pair. Latency: the time spent in Get plus the time
// spent in Put (not the payload write or --work-ns), sampled 1 in
// --lat-sample pairs.
//
// Invariants (as the C original): no object is handed to two goroutines at
// once (after Get a goroutine writes its tag, id << 40 | seq, at the start
// of the object and its fill byte over the rest, and checks both before
// Put, after --work-ns); Get never returns nil; count: pairs done == --items
// in count mode; every goroutine ended.

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
)

const poolTagShift = 40

// poolFill is memset(b, v): one store, then doubling copies.
func poolFill(b []byte, v byte) {
	if len(b) == 0 {
		return
	}
	b[0] = v
	for k := 1; k < len(b); k *= 2 {
		copy(b[k:], b[:k])
	}
}

func poolRun(r *Run) error {
	c := r.Cfg
	threads := int(c.Threads)
	alloc := c.Param("alloc") != 0
	hold := c.Param("hold")
	if hold < 1 || hold > 65536 {
		r.Fail("--set hold=%d: expected 1..65536", hold)
		return nil
	}
	size := int(c.Payload)
	if size < 8 {
		size = 8
	}
	per, extra := uint64(c.Items)/uint64(threads), uint64(c.Items)%uint64(threads)
	p := &sync.Pool{New: func() any {
		b := make([]byte, size)
		return &b
	}}
	var ops atomic.Uint64
	var errs Errs
	for i := 0; i < threads; i++ {
		id := uint64(i)
		r.Spawn("getput", func(t *Thread) {
			n := per
			if id < extra {
				n++
			}
			fill := byte(id*2 + 1)
			held := make([][]byte, hold)
			heldP := make([]*[]byte, hold) // the pool's pointers to them (alloc=0)
			tGet := make([]uint64, hold)   // Get's duration + 1, 0: not timed
			untilSample := int64(0)
			var seq uint64
			defer func() {
				ops.Add(seq)
				t.Ops = seq
				t.Phase("done")
			}()
			t.Phase("get/put")
			for r.More(seq, n) {
				h := uint64(hold)
				if c.Duration <= 0 && n-seq <= h {
					h = n - seq
				}
				for j := uint64(0); j < h; j++ { // get h objects and tag them
					timed := false
					var t0 uint64
					if c.LatSample > 0 {
						if untilSample--; untilSample <= 0 {
							untilSample = c.LatSample
							timed = true
							t0 = Now()
						}
					}
					var b []byte
					if alloc {
						b = make([]byte, size)
					} else if o, _ := p.Get().(*[]byte); o != nil {
						heldP[j] = o
						b = *o
					}
					tGet[j] = 0
					if timed {
						tGet[j] = Now() - t0 + 1
					}
					if b == nil {
						errs.note("get returned nil (goroutine, seq)", id, seq)
						return
					}
					binary.LittleEndian.PutUint64(b, id<<poolTagShift|(seq+j))
					poolFill(b[8:], fill)
					held[j] = b
				}
				if c.WorkNs > 0 {
					Work(c.WorkNs)
				}
				for j := uint64(0); j < h; j++ { // still ours? then put them back
					b := held[j]
					held[j] = nil
					tag := id<<poolTagShift | (seq + j)
					if got := binary.LittleEndian.Uint64(b); got != tag || (len(b) > 8 && b[len(b)-1] != fill) {
						errs.note("object written by another goroutine while held (tag, found)", tag, got)
					}
					var t0 uint64
					if tGet[j] != 0 {
						t0 = Now()
					}
					if !alloc {
						p.Put(heldP[j]) // the pointer it came in: Put does not allocate
						heldP[j] = nil
					}
					if t0 != 0 {
						t.Hist.Record(tGet[j] - 1 + (Now() - t0))
					}
				}
				seq += h
			}
		})
	}
	r.Start()
	r.WaitDuration()
	r.Join()
	if errs.n > 0 {
		r.Fail("%s: %x, %x (%d errors)", errs.first, errs.a, errs.b, errs.n)
	}
	if c.Duration <= 0 && ops.Load() != uint64(c.Items) {
		r.Fail("count: %d get/put pairs done, asked for %d", ops.Load(), c.Items)
	}
	r.Ops = ops.Load()
	return nil
}

func init() {
	register(&Pattern{Name: "pool", Params: []string{"alloc", "hold"}, Run: poolRun})
}
