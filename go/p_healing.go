package main

// healing: the twin of workloads/healing.c (seed 000's scale_healing, the
// steward/ward of Concurrency in Go): a steward supervises one ward that
// works through a stream of units and emits heartbeats; when a heartbeat
// deadline passes, the steward cancels the ward's context, waits until it
// has exited, and starts a new one that first redoes the unit the old one
// left unfinished.
//
// Goroutines: a producer (units 0, 1, ... into a channel of --capacity,
// closed at the end), the ward of the moment (a new goroutine per restart,
// spawned after the start), and the steward, which is the run's own
// goroutine (as in the C, where it is the run's thread: not counted among
// the threads). The ward selects over its time.Ticker (pulse_us: a
// non-blocking heartbeat send, the seed's `select { case heartbeat <-
// struct{}{}: default: }`), the units channel and its ctx.Done() (a child
// of the run's context). The steward selects over the heartbeats, its
// deadline time.Timer (reset to timeout_us by every beat), the "finished"
// channel and the run's cancel timer (cancel_after_ms); beats carry the
// ward's generation, so a beat left by a ward already replaced is ignored.
// Faults (--set fault=1 hang | 2 die, fault_every, max_faults): the ward
// hangs (stops beating, blocks until its ctx is cancelled) or dies (its
// goroutine returns, the unit unfinished). A restart with no fault is
// counted as spurious.
//
// One op: one unit done. Latency: a unit's send by the producer -> its
// commit (redone units included), for the units whose id is a multiple of
// LatSample (as the C). Metrics: detect_p50_ns, detect_max_ns,
// recover_p50_ns, recover_max_ns, restarts, faults, spurious.
//
// Invariants (as the C): no unit lost or done twice across restarts
// (a bitmap of commits; produced = done + left in the channel + abandoned
// on a cancel; count mode without a cancel: every one of --items done); at
// most one live ward at a time; every ward exits within 1 s of its cancel;
// every fault injected is detected by a restart; the producer and the ward
// stop within 1 s of the run's cancel; every goroutine ended.

import (
	"context"
	"math"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

const (
	healingFaultNone = iota
	healingFaultHang
	healingFaultDie
)

const (
	healingBound     = uint64(time.Second)
	healingBudget    = 256 // restarts per run
	healingNone      = math.MaxUint64
	healingChunkBits = 20
	healingMaxChunks = 4096 // 2^32 units
	healingChunkLen  = (1 << healingChunkBits) / 32
)

type healingUnit struct{ id, sent uint64 }

type healingWard struct {
	gen      uint64
	ctx      context.Context
	cancel   context.CancelFunc
	exited   chan struct{} // closed by the ward as its last act
	redo     healingUnit   // the unit its predecessor left (id healingNone: none)
	inflight healingUnit   // read by the steward after exited
	tFault   uint64        // atomic: when it hung or died, 0 if it did not
}

type healingState struct {
	r                                            *Run
	units                                        chan healingUnit
	beats                                        chan uint64
	ctx                                          context.Context // the run's: cancel_after_ms
	cancel                                       context.CancelFunc
	finished                                     chan struct{} // a ward saw the units channel closed and drained
	finishOnce                                   sync.Once
	fault                                        int
	faultEvery, maxFaults                        uint64
	pulse                                        time.Duration
	taken, faults, restarts, done, dup, firstDup uint64 // atomic
	produced, bad                                uint64 // atomic
	live, twoLive                                int32  // atomic
	chunk                                        [healingMaxChunks]atomic.Pointer[[healingChunkLen]uint32]
}

// healingCommit marks unit id done: 1 if it already was, -1 if out of range.
func (h *healingState) healingCommit(id uint64) int {
	c := id >> healingChunkBits
	if c >= healingMaxChunks {
		return -1
	}
	p := h.chunk[c].Load()
	if p == nil {
		n := new([healingChunkLen]uint32)
		if h.chunk[c].CompareAndSwap(nil, n) {
			p = n
		} else {
			p = h.chunk[c].Load()
		}
	}
	bit := id & (1<<healingChunkBits - 1)
	w, m := &p[bit>>5], uint32(1)<<(bit&31)
	for {
		old := atomic.LoadUint32(w)
		if old&m != 0 {
			return 1
		}
		if atomic.CompareAndSwapUint32(w, old, old|m) {
			return 0
		}
	}
}

func (h *healingState) healingIsDone(id uint64) bool {
	c := id >> healingChunkBits
	if c >= healingMaxChunks {
		return false
	}
	p := h.chunk[c].Load()
	bit := id & (1<<healingChunkBits - 1)
	return p != nil && atomic.LoadUint32(&p[bit>>5])>>(bit&31)&1 != 0
}

func (h *healingState) producer(t *Thread) {
	r := h.r
	n := uint64(r.Cfg.Items)
	var end uint64
	if r.Cfg.Duration > 0 {
		end = r.TStart + uint64(r.Cfg.Duration*1e9)
	}
	id := uint64(0)
	t.Phase("send unit")
loop:
	for ; r.More(id, n) && (end == 0 || Now() < end); id++ {
		select {
		case h.units <- healingUnit{id, Now()}:
		case <-h.ctx.Done():
			break loop // the run's cancel
		}
	}
	atomic.StoreUint64(&h.produced, id)
	t.Ops = id
	close(h.units)
	t.Phase("done")
}

// healingFaultNow claims one of the run's faults for the unit just taken.
func (h *healingState) healingFaultNow() bool {
	if h.fault == healingFaultNone || h.faultEvery == 0 {
		return false
	}
	if (atomic.AddUint64(&h.taken, 1)-1)%h.faultEvery != h.faultEvery-1 {
		return false
	}
	if atomic.LoadUint64(&h.restarts)+2 > healingBudget {
		return false // keep a restart to handle it
	}
	for {
		f := atomic.LoadUint64(&h.faults)
		if f >= h.maxFaults {
			return false
		}
		if atomic.CompareAndSwapUint64(&h.faults, f, f+1) {
			return true
		}
	}
}

func (h *healingState) beat(w *healingWard) {
	select {
	case h.beats <- w.gen:
	default: // dropped if the steward has one pending
	}
}

// work: false: go on; true: the ward stops here (hung then cancelled, or died)
func (h *healingState) work(t *Thread, w *healingWard, u healingUnit) bool {
	w.inflight = u
	if h.healingFaultNow() {
		atomic.StoreUint64(&w.tFault, Now())
		if h.fault == healingFaultHang {
			t.Phase("hung (until cancelled)")
			<-w.ctx.Done()
		}
		return true // died, or hung and cancelled: the unit stays in flight
	}
	if wn := h.r.Cfg.WorkNs; wn > 0 {
		Work(wn)
	}
	was := h.healingCommit(u.id)
	if was < 0 {
		atomic.AddUint64(&h.bad, 1)
	} else if was > 0 && atomic.AddUint64(&h.dup, 1) == 1 {
		atomic.StoreUint64(&h.firstDup, u.id)
	}
	atomic.AddUint64(&h.done, 1)
	w.inflight.id = healingNone
	if sample := h.r.Cfg.LatSample; sample > 0 && u.id%uint64(sample) == 0 {
		t.Hist.Record(Since(u.sent))
	}
	t.Ops++
	return false
}

func (h *healingState) ward(t *Thread, w *healingWard) {
	if atomic.AddInt32(&h.live, 1) != 1 {
		atomic.StoreInt32(&h.twoLive, 1)
	}
	tk := time.NewTicker(h.pulse)
	w.inflight.id = healingNone
	h.beat(w) // alive
	if w.redo.id == healingNone || !h.work(t, w, w.redo) {
	loop:
		for {
			t.Phase("select")
			select {
			case <-w.ctx.Done():
				break loop // cancelled by the steward (or the run)
			case <-tk.C:
				h.beat(w)
			case u, ok := <-h.units:
				if !ok {
					h.finishOnce.Do(func() { close(h.finished) }) // all units taken and done
					break loop
				}
				t.Phase("work")
				if h.work(t, w, u) {
					break loop
				}
			}
		}
	}
	tk.Stop()
	atomic.AddInt32(&h.live, -1)
	t.Phase("exited")
	close(w.exited)
}

// healingResetTimer: Stop, drain a fire not yet received, Reset (the
// timer's channel then holds only the new deadline's fire).
func healingResetTimer(tm *time.Timer, d time.Duration) {
	if !tm.Stop() {
		select {
		case <-tm.C:
		default:
		}
	}
	tm.Reset(d)
}

// healingWaitExit: the ward's exit within the bound (an exit already
// there wins over an expired bound).
func healingWaitExit(exited chan struct{}, bound time.Duration) bool {
	select {
	case <-exited:
		return true
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	select {
	case <-exited:
		return true
	case <-ctx.Done():
		select {
		case <-exited:
			return true
		default:
			return false
		}
	}
}

func healingMedianMax(v []uint64) (uint64, uint64) {
	sort.Slice(v, func(i, j int) bool { return v[i] < v[j] })
	return v[len(v)/2], v[len(v)-1]
}

func healingRun(r *Run) error {
	c := r.Cfg
	timeout := time.Duration(c.Param("timeout_us")) * time.Microsecond
	cancelMs := c.Param("cancel_after_ms")
	h := &healingState{
		r:          r,
		fault:      int(c.Param("fault")),
		faultEvery: uint64(c.Param("fault_every")),
		maxFaults:  uint64(c.Param("max_faults")),
		pulse:      time.Duration(c.Param("pulse_us")) * time.Microsecond,
		units:      make(chan healingUnit, c.Capacity),
		beats:      make(chan uint64, 1),
		finished:   make(chan struct{}),
	}
	h.ctx, h.cancel = context.WithCancel(context.Background())
	defer h.cancel()
	deadline := time.NewTimer(timeout)
	deadline.Stop()
	r.Spawn("producer", h.producer)

	// the steward: this goroutine
	var cancelledAt, recoveringSince, spurious, detected uint64
	var detect, recover []uint64
	var wards []*healingWard
	redo := healingUnit{healingNone, 0}
	r.Start()
	var cancelC <-chan time.Time
	if cancelMs > 0 {
		cancelTm := time.NewTimer(time.Duration(cancelMs) * time.Millisecond)
		defer cancelTm.Stop()
		cancelC = cancelTm.C
	}
	for {
		// start a ward (nobody else is alive: the previous one has exited)
		w := &healingWard{gen: uint64(len(wards)) + 1, redo: redo, exited: make(chan struct{})}
		w.ctx, w.cancel = context.WithCancel(h.ctx)
		wards = append(wards, w)
		r.Spawn("ward", func(t *Thread) { h.ward(t, w) })
		healingResetTimer(deadline, timeout)

		restart, stop := false, false
		for !restart && !stop {
			select {
			case gen := <-h.beats:
				now := Now()
				if gen != w.gen {
					continue // a beat of a ward already replaced
				}
				if recoveringSince != 0 {
					if len(recover) <= healingBudget {
						recover = append(recover, Diff(now, recoveringSince))
					}
					recoveringSince = 0
				}
				healingResetTimer(deadline, timeout)
			case <-deadline.C:
				if atomic.LoadUint64(&h.restarts) >= healingBudget {
					continue // only watching now
				}
				restart = true
			case <-h.finished:
				stop = true
			case <-cancelC:
				cancelledAt = Now()
				h.cancel()
				stop = true
			}
		}
		if restart {
			w.cancel()
		}
		// every ward exits within 1 s of its cancel (or of the end)
		t0 := Now()
		if !healingWaitExit(w.exited, time.Duration(healingBound)) {
			r.Fail("ward %d did not exit within %.3f s of its cancel", w.gen, float64(Since(t0))/1e9)
			h.cancel()
			<-w.exited // the watchdog bounds this
			w.cancel()
			break
		}
		w.cancel()
		if stop {
			break
		}
		atomic.AddUint64(&h.restarts, 1)
		tf, now := atomic.LoadUint64(&w.tFault), Now()
		if tf != 0 {
			detected++
			detect = append(detect, Diff(now, tf))
			recoveringSince = tf
		} else {
			spurious++
		}
		redo = w.inflight
		if redo.id != healingNone && h.healingIsDone(redo.id) {
			redo.id = healingNone
		}
	}
	deadline.Stop()
	h.cancel() // the producer, if a ward failed to exit
	r.Join()

	// the accounting
	var left, dupLeft uint64
	for u := range h.units { // closed by the producer, joined
		if h.healingIsDone(u.id) {
			dupLeft++
		}
		left++
	}
	last := wards[len(wards)-1]
	var abandoned, endedByCancel uint64
	if last.inflight.id != healingNone && !h.healingIsDone(last.inflight.id) {
		abandoned = 1
	}
	// a fault in the ward that the cancel (not a restart) ended
	if cancelledAt != 0 && atomic.LoadUint64(&last.tFault) != 0 {
		endedByCancel = 1
	}
	produced, done, dup := h.produced, h.done, h.dup
	faults, restarts := h.faults, h.restarts
	if h.twoLive != 0 {
		r.Fail("two wards were alive at once")
	}
	if dup > 0 {
		r.Fail("units done twice: %d (first: unit %d)", dup, h.firstDup)
	}
	if h.bad > 0 {
		r.Fail("%d ward errors (out of memory, or a unit id out of range)", h.bad)
	}
	if dupLeft > 0 {
		r.Fail("%d units left in the channel were already done", dupLeft)
	}
	if produced != done-dup+left+abandoned {
		r.Fail("units lost: produced %d != done %d + left in the channel %d + abandoned on the cancel %d",
			produced, done-dup, left, abandoned)
	}
	if cancelledAt == 0 && (left > 0 || abandoned > 0) {
		r.Fail("no cancel, yet %d units left and %d abandoned", left, abandoned)
	}
	if cancelledAt == 0 && c.Duration <= 0 && done != uint64(c.Items) {
		r.Fail("done %d units, expected --items %d", done, c.Items)
	}
	if faults != detected+endedByCancel {
		r.Fail("%d faults injected, %d detected by a restart (+ %d ended by the cancel)", faults, detected,
			endedByCancel)
	}
	if cancelledAt != 0 && r.TEnd > cancelledAt && r.TEnd-cancelledAt > healingBound {
		r.Fail("cancellation took %.3f s to stop the producer and the ward (bound 1 s)",
			float64(r.TEnd-cancelledAt)/1e9)
	}

	if len(detect) > 0 {
		p50, max := healingMedianMax(detect)
		r.Metric("detect_p50_ns", float64(p50))
		r.Metric("detect_max_ns", float64(max))
	}
	if len(recover) > 0 {
		p50, max := healingMedianMax(recover)
		r.Metric("recover_p50_ns", float64(p50))
		r.Metric("recover_max_ns", float64(max))
	}
	r.Metric("restarts", float64(restarts))
	r.Metric("faults", float64(faults))
	r.Metric("spurious", float64(spurious))
	r.Ops = done
	return nil
}

func init() {
	register(&Pattern{
		Name:    "healing",
		Params:  []string{"fault", "fault_every", "max_faults", "pulse_us", "timeout_us", "cancel_after_ms"},
		Metrics: []string{"detect_p50_ns", "detect_max_ns", "recover_p50_ns", "recover_max_ns", "restarts", "faults", "spurious"},
		Run:     healingRun,
	})
}
