package main

// contextio: a writer that honours cancellation mid-write, the twin of
// workloads/contextio.c (the seed catalogue's orchestration_contextio). Write(ctx, p)
// sends p (--payload bytes) to a sink in chunks of --set chunk=B bytes over
// a channel (--capacity chunks of buffer), looks at ctx before each chunk
// and sends in a select with <-ctx.Done(), so a cancel stops it between
// chunks, and it returns (n, err) as io.Writer must: n < len(p) only with an
// error. As in the C, p is virtual: each chunk's bytes are made from (Write
// id, offset) straight into the chunk, whose buffer comes from a sync.Pool
// and goes back to it once the sink has checked it. The sink reads a Write's
// chunks and, once --set cancel_pct=P percent of it has arrived, cancels its
// ctx and stops reading: from then on the writer can only fill the buffer,
// then must notice the cancel.
//
// One op: one chunk written. Latency: the ctx look + send of a chunk, 1 in
// LatSample chunks. Count mode: Writes until exactly --items chunks are
// written (the last Write cut to what is left); time mode: until --duration.
//
// Invariants (as the C original, per Write, checked by the sink after the
// Write returned and it drained the channel): bytes written == bytes
// reported, each chunk of the right Write at the right offset, in order,
// first and last byte intact; n == len(p) with nil, n < len(p) with
// context.Canceled, Canceled only after the sink's cancel; after the cancel
// at most capacity chunks written, and Write returned within 1 s; every
// goroutine ended.
//
// --variant=seed: cancellation by abandonment (playbook 003's
// doWorkWithTimeout): a helper goroutine writes the whole p with plain
// sends, Write selects on its result and ctx.Done() and returns (0,
// ctx.Err()) at the cancel while the helper goes on writing: bytes written
// != bytes reported, and a helper still blocked in its send (a leaked
// goroutine), released by the sink reading the rest of its Write, after
// counting.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const cioBoundNs = 1000000000

type cioChunk struct {
	writeID         uint64
	off, len, total uint32
	data            []byte // len bytes of the Write from off
}

type cioEnd struct {
	writeID, n, len, chunks, tReturn uint64
	err                              error
	last                             bool
}

type cioResult struct{ n, k uint64 }

// cioCur is the current Write's cancel, for the sink.
type cioCur struct{ cancel context.CancelFunc }

type cioState struct {
	r          *Run
	seed       bool
	payload    uint64
	chunk      uint64
	cancelPct  uint64
	capacity   uint64
	data       chan *cioChunk // writer (or helper) -> sink
	ctl        chan cioEnd    // Write returned, writer -> sink (capacity 1)
	ack        chan uint64    // sink -> writer: the Write is checked (unbuffered)
	req        chan [2]uint64 // seed: writer -> helper, (Write id, length)
	res        chan cioResult // seed: helper -> writer (capacity 1)
	pool       sync.Pool
	cur        atomic.Pointer[cioCur]
	helperBusy int32
	failed     int32 // the sink found a violation: the writer stops
	// the writer's, read after the join
	made, chunks uint64
	// the sink's findings, read after the join
	fail                                   string
	nfail                                  int
	worstCancelNs, cancelledWrites, writes uint64
}

func (s *cioState) note(format string, a ...interface{}) {
	atomic.StoreInt32(&s.failed, 1)
	if s.nfail == 0 {
		s.fail = fmt.Sprintf(format, a...)
	}
	s.nfail++
}

// the content of byte off of Write w
func cioContent(w, off uint64) byte { return byte(Mix(w) + off*0x9d) }

func (s *cioState) chunkFor(w, off, n, total uint64) *cioChunk {
	c := s.pool.Get().(*cioChunk)
	c.writeID, c.off, c.len, c.total = w, uint32(off), uint32(n), uint32(total)
	c.data = c.data[:n]
	b := cioContent(w, off)
	for i := range c.data {
		c.data[i] = b
		b += 0x9d
	}
	return c
}

type cioSampler struct {
	every, left int64
	h           *Hist
}

// write is Write(p[:total]), ctx-aware: (n, err) and the chunks written.
func (s *cioState) write(ctx context.Context, w, total uint64, sm *cioSampler) (n, k uint64, err error) {
	for n < total {
		var t0 uint64
		if sm.every > 0 {
			if sm.left--; sm.left <= 0 {
				sm.left = sm.every
				t0 = Now()
			}
		}
		select { // the look at ctx before each chunk
		case <-ctx.Done():
			return n, k, ctx.Err()
		default:
		}
		l := total - n
		if l > s.chunk {
			l = s.chunk
		}
		c := s.chunkFor(w, n, l, total)
		select {
		case s.data <- c:
		case <-ctx.Done():
			s.pool.Put(c)
			return n, k, ctx.Err() // not written
		}
		if t0 != 0 {
			sm.h.Record(Since(t0))
		}
		n += l
		k++
	}
	return n, k, nil
}

// helper is the seed's: it writes each requested Write whole, ctx-unaware.
func (s *cioState) helper(t *Thread) {
	t.Phase("wait request")
	for rq := range s.req {
		t.Phase("write (no ctx)")
		var n, k uint64
		for n < rq[1] {
			l := rq[1] - n
			if l > s.chunk {
				l = s.chunk
			}
			s.data <- s.chunkFor(rq[0], n, l, rq[1])
			n += l
			k++
		}
		atomic.StoreInt32(&s.helperBusy, 0)
		s.res <- cioResult{n, k} // capacity 1: never blocks
		t.Phase("wait request")
	}
	t.Phase("done")
}

// seedWrite: the write runs in the helper; the caller gives up at the cancel.
func (s *cioState) seedWrite(ctx context.Context, w, total uint64) (n, k uint64, err error, abandoned bool) {
	atomic.StoreInt32(&s.helperBusy, 1)
	s.req <- [2]uint64{w, total}
	select {
	case res := <-s.res:
		return res.n, res.k, nil, false
	case <-ctx.Done():
		return 0, 0, ctx.Err(), true // the helper goes on
	}
}

func (s *cioState) writer(t *Thread) {
	r := s.r
	items := uint64(r.Cfg.Items)
	sm := cioSampler{every: r.Cfg.LatSample, h: t.Hist}
	var w, chunks uint64
	for w = 0; r.More(chunks, items) && atomic.LoadInt32(&s.failed) == 0; w++ {
		total := s.payload
		if r.Cfg.Duration <= 0 && (items-chunks)*s.chunk < total {
			total = (items - chunks) * s.chunk
		}
		ctx, cancel := context.WithCancel(context.Background())
		s.cur.Store(&cioCur{cancel})
		t.Phase("Write")
		var n, k uint64
		var err error
		abandoned := false
		if s.seed {
			n, k, err, abandoned = s.seedWrite(ctx, w, total)
		} else {
			n, k, err = s.write(ctx, w, total, &sm)
		}
		e := cioEnd{writeID: w, n: n, len: total, chunks: k, tReturn: Now(), err: err}
		chunks += k
		t.Phase("report")
		s.ctl <- e
		t.Phase("wait ack")
		<-s.ack
		if abandoned { // the seed's helper result, left behind by the abandoned Write
			t.Phase("seed: collect stale result")
			<-s.res
		}
		s.cur.Store(nil)
		cancel()
	}
	t.Ops = chunks
	s.made = w
	s.chunks = chunks
	t.Phase("close")
	s.ctl <- cioEnd{writeID: w, last: true}
	if s.req != nil {
		close(s.req)
	}
	t.Phase("done")
}

type cioSinkWrite struct {
	w, got, nchunks, total, atCancel, tCancel uint64
	cancelled                                 bool
}

func (s *cioState) take(sw *cioSinkWrite, c *cioChunk) {
	if sw.nchunks == 0 {
		sw.total = uint64(c.total)
	}
	switch {
	case c.writeID != sw.w || uint64(c.off) != sw.got || c.len == 0 || uint64(c.len) > s.chunk ||
		uint64(c.total) != sw.total || len(c.data) != int(c.len):
		s.note("Write %d: chunk of Write %d at offset %d (%d bytes), expected offset %d", sw.w, c.writeID, c.off,
			c.len, sw.got)
	case c.data[0] != cioContent(c.writeID, uint64(c.off)) ||
		c.data[c.len-1] != cioContent(c.writeID, uint64(c.off))+byte(uint64(c.len-1)*0x9d):
		s.note("Write %d: chunk at offset %d torn", sw.w, c.off)
	}
	sw.got += uint64(c.len)
	sw.nchunks++
	s.pool.Put(c)
	cancelAt := sw.total * s.cancelPct / 100
	if s.cancelPct != 0 && cancelAt == 0 {
		cancelAt = 1
	}
	if !sw.cancelled && cancelAt != 0 && sw.got >= cancelAt {
		cur := s.cur.Load()
		sw.tCancel = Now()
		sw.atCancel = sw.got
		sw.cancelled = true
		cur.cancel()
	}
}

func (s *cioState) check(sw *cioSinkWrite, e *cioEnd, helperRunning bool) {
	w := sw.w
	if e.writeID != sw.w {
		s.note("Write %d: its report names Write %d", w, e.writeID)
	}
	if e.n != sw.got {
		if helperRunning {
			s.note("Write %d: bytes written %d != bytes reported %d, and the Write's helper is still writing "+
				"after it returned: leaked 1 goroutine (cancellation by abandonment)", w, sw.got, e.n)
		} else {
			s.note("Write %d: bytes written %d != bytes reported %d", w, sw.got, e.n)
		}
	}
	if e.err == nil && e.n != e.len {
		s.note("Write %d: returned nil after %d of %d bytes", w, e.n, e.len)
	}
	if !s.seed && e.chunks != sw.nchunks {
		s.note("Write %d: %d chunks written, the sink got %d", w, e.chunks, sw.nchunks)
	}
	canceled := e.err == context.Canceled
	if canceled && !sw.cancelled {
		s.note("Write %d: returned %v, nobody cancelled it", w, e.err)
	}
	if canceled && e.n >= e.len {
		s.note("Write %d: %v with all bytes written", w, e.err)
	}
	if e.err != nil && !canceled {
		s.note("Write %d: returned %v", w, e.err)
	}
	if sw.cancelled && !s.seed {
		after := Diff(e.n, sw.atCancel)
		if room := s.capacity * s.chunk; after > room {
			s.note("Write %d: wrote %d bytes after the cancel, the sink's buffer holds %d", w, after, room)
		}
	}
	if sw.cancelled && canceled {
		d := Diff(e.tReturn, sw.tCancel)
		if d > s.worstCancelNs {
			s.worstCancelNs = d
		}
		if d > cioBoundNs {
			s.note("Write %d: returned %.3f s after the cancel (bound 1 s)", w, float64(d)/1e9)
		}
		s.cancelledWrites++
	}
}

func (s *cioState) sink(t *Thread) {
	for w := uint64(0); ; w++ {
		sw := cioSinkWrite{w: w}
		var e cioEnd
		haveEnd := false
		t.Phase("read")
		for !sw.cancelled && !haveEnd {
			select {
			case c := <-s.data:
				s.take(&sw, c)
			case e = <-s.ctl:
				haveEnd = true
			}
		}
		if !haveEnd { // cancelled: stop reading, wait for the Write to return
			t.Phase("cancelled: wait for Write")
			e = <-s.ctl
		}
		if e.last {
			break
		}
		// the seed's helper, blocked in a send after its Write returned? (counted
		// now, before the drain below lets it go on)
		helperRunning := s.seed && atomic.LoadInt32(&s.helperBusy) != 0
		// what the Write put in the buffer before it returned
		t.Phase("drain")
	drain:
		for {
			select {
			case c := <-s.data:
				s.take(&sw, c)
			default:
				break drain
			}
		}
		s.check(&sw, &e, helperRunning)
		if s.seed && sw.got < e.len && e.n != sw.got {
			// release the abandoned helper (after counting it): read the rest of its Write
			t.Phase("seed: release helper")
			bound := time.NewTimer(5 * cioBoundNs)
		release:
			for sw.got < e.len {
				select {
				case c := <-s.data:
					s.take(&sw, c)
				case <-bound.C:
					break release
				}
			}
			bound.Stop()
		}
		s.writes++
		t.Phase("ack")
		s.ack <- w
	}
	t.Phase("done")
}

func contextioRun(r *Run) error {
	c := r.Cfg
	s := &cioState{r: r, seed: c.Variant == "seed", payload: uint64(c.Payload), chunk: uint64(c.Param("chunk")),
		cancelPct: uint64(c.Param("cancel_pct")), capacity: uint64(c.Capacity)}
	if s.chunk < 1 || c.Payload < 0 || c.Capacity < 0 {
		return fmt.Errorf("chunk=%d payload=%d capacity=%d", s.chunk, c.Payload, c.Capacity)
	}
	chunk := int(s.chunk)
	s.pool.New = func() interface{} { return &cioChunk{data: make([]byte, chunk)} }
	s.data = make(chan *cioChunk, c.Capacity)
	s.ctl = make(chan cioEnd, 1)
	s.ack = make(chan uint64)
	if s.seed {
		s.req = make(chan [2]uint64)
		s.res = make(chan cioResult, 1)
	}
	r.Spawn("sink", s.sink)
	if s.seed {
		r.Spawn("helper", s.helper)
	}
	r.Spawn("writer", s.writer)
	r.Start()
	r.WaitDuration()
	r.Join()

	if s.nfail > 0 {
		more := ""
		if s.nfail > 1 {
			more = " (and more)"
		}
		r.Fail("%s%s", s.fail, more)
	}
	if s.writes != s.made {
		r.Fail("the sink checked %d Writes, the writer made %d", s.writes, s.made)
	}
	if c.Duration <= 0 && !r.Stopped() && s.nfail == 0 && s.chunks != uint64(c.Items) {
		r.Fail("%d chunks written, expected %d", s.chunks, c.Items)
	}
	r.Metric("cancel_to_return_ns", float64(s.worstCancelNs))
	r.Metric("cancelled_writes", float64(s.cancelledWrites))
	r.Ops = s.chunks
	return nil
}

func init() {
	register(&Pattern{Name: "contextio", Params: []string{"chunk", "cancel_pct"}, Variants: []string{"default", "seed"},
		Metrics: []string{"cancel_to_return_ns", "cancelled_writes"}, Run: contextioRun})
}
