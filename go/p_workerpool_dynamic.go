package main

// workerpool_dynamic: a worker pool whose size follows the load, between
// --set min=N and --threads=MAX workers; the twin of
// workloads/workerpool_dynamic.c, the dynamic-size pool of seed 000
// (pools_workerpool_dynamic). A submitter feeds a bounded job queue in bursts
// (--set burst=B jobs at full speed, then --set pause_us=P of quiet), a
// scaler on a time.Ticker (--set tick_us) starts one more worker when the
// backlog has stayed above the mark (queue depth > --set mark, or the
// submitter blocked on a full queue, or jobs waiting with no worker at all)
// for --set grow_ticks consecutive ticks, and a worker retires after --set
// idle_us without a job (its own time.Timer, the seed's `case
// <-time.After(idle)` without a timer per wait), unless the pool is at min.
// Results go to a collector, as in workerpool; --set cancel_after_ms=T
// cancels the pool's context mid-run.
//
// Shape: here a worker is what the C's thread slot stands for, a goroutine:
// the scaler grows the pool with the `go` statement (r.Spawn after Start)
// and a retiring worker returns. The pool's count `live` includes a worker
// from the moment it is started. So the thread column counts the goroutines
// of the run, collector + scaler + submitter + the min first workers + one
// per grow, where the C has MAX + 3 threads however often the pool breathes;
// and no worker is ever "started but never run" (the C's tokens left in the
// wake channel): live must be 0 once every worker has left. The last of the
// goroutines that can send results (the scaler, which may start workers,
// and every worker) closes the results channel, as the C's last slot does.
//
// One op: one job's result collected. Latency: a job's sojourn, from its
// submission to its result being collected, 1 in LatSample jobs.
//
// Metrics (as the C): reaction_ns, the median over load steps (the start of
// a burst) of the time to the next worker added; workers_min, workers_mean,
// workers_max, the pool's size sampled at every scaler tick; grows and
// shrinks, the number of workers added and retired.
//
// Invariants (as the C original):
//   - never above max: each worker's start counts the workers running their
//     loop, and that count is <= max (a retiring worker stops counting
//     before it leaves the pool, so that a replacement started at once is not
//     counted beside it: the count never exceeds live); each change of live
//     lands in [min, max], and so does every sample the scaler takes before
//     shutdown;
//   - never below min: a retirement leaves live >= min, and when the pool
//     shuts down every worker started has retired or exited (activations ==
//     retirements + exits), live back to 0;
//   - as workerpool: no job counted twice (a bitmap of ids); submitted ==
//     collected + abandoned + left in the queue; collected == delivered;
//     without cancellation every job is collected (count mode: --items);
//   - cancellation observed promptly: every goroutine has ended within 1 s of
//     the cancel;
//   - every goroutine ended.

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

type wpdJob struct{ id, submitted uint64 }
type wpdResult struct{ id, submitted uint64 }

const wpdChunkBits = 20

// wpdSeen is the collector's bitmap of job ids, in chunks of 2^20 ids.
type wpdSeen struct{ chunks [][]uint64 }

func (s *wpdSeen) mark(id uint64) bool {
	c := int(id >> wpdChunkBits)
	for len(s.chunks) <= c {
		s.chunks = append(s.chunks, nil)
	}
	if s.chunks[c] == nil {
		s.chunks[c] = make([]uint64, (1<<wpdChunkBits)/64)
	}
	bit := id & (1<<wpdChunkBits - 1)
	w, m := &s.chunks[c][bit>>6], uint64(1)<<(bit&63)
	was := *w&m != 0
	*w |= m
	return was
}

type wpdPool struct {
	min, max int64
	mu       sync.Mutex // the first violation
	nbad     uint64
	badWhat  string
	badValue int64
}

func (p *wpdPool) violation(what string, v int64) {
	p.mu.Lock()
	if p.nbad == 0 {
		p.badWhat, p.badValue = what, v
	}
	p.nbad++
	p.mu.Unlock()
}

func (p *wpdPool) inBounds(n int64) bool { return n >= p.min && n <= p.max }

var errWpdMin = errors.New("--set min must be <= --threads (the pool's max)")
var errWpdTick = errors.New("--set tick_us (the scaler's period) must be >= 1")

func wpdRun(r *Run) error {
	c := r.Cfg
	p := &wpdPool{min: c.Param("min"), max: c.Threads}
	mark := c.Param("mark")
	growTicks := c.Param("grow_ticks")
	if growTicks <= 0 {
		growTicks = 1
	}
	tick := time.Duration(c.Param("tick_us")) * time.Microsecond
	idleD := time.Duration(c.Param("idle_us")) * time.Microsecond
	burst := uint64(c.Param("burst"))
	pause := time.Duration(c.Param("pause_us")) * time.Microsecond
	cancelMs := c.Param("cancel_after_ms")
	if p.min > p.max {
		return errWpdMin
	}
	if tick < time.Microsecond {
		return errWpdTick
	}

	jobs := make(chan wpdJob, c.Capacity)
	results := make(chan wpdResult, c.Capacity)
	var ctx context.Context
	var cancel context.CancelFunc
	var done <-chan struct{} // nil: no cancellation
	if cancelMs > 0 {
		ctx, cancel = context.WithCancel(context.Background())
		defer cancel()
		done = ctx.Done()
	}
	live := p.min               // the pool's size: started, not retired/exited
	var running int64           // workers inside their loop (<= live)
	var shutdown int32          // set before jobs closes or once a cancel is seen
	var blocked int32           // the submitter waits on a full queue
	var stepAt uint64           // start of the latest burst not yet answered; 0: none
	senders := int32(1 + p.min) // the scaler and the workers: the last closes results
	var submitted, delivered, abandoned, activations, retirements, exits uint64
	// collector-only
	var seen wpdSeen
	var collected, dup, firstDup uint64
	// scaler-only
	var samples, sampleSum, grows uint64
	wmin, wmax := int64(math.MaxInt64), int64(-1)
	reaction := &Hist{}

	leave := func() {
		if atomic.AddInt32(&senders, -1) == 0 {
			close(results)
		}
	}
	// tryRetire leaves the pool if it is above min: a CAS, so that two idle
	// workers cannot both take it from min + 1 to min - 1.
	tryRetire := func() bool {
		for n := atomic.LoadInt64(&live); n > p.min; n = atomic.LoadInt64(&live) {
			if atomic.CompareAndSwapInt64(&live, n, n-1) {
				if !p.inBounds(n - 1) {
					p.violation("a retirement left the pool at", n-1)
				}
				return true
			}
		}
		return false
	}
	enter := func() {
		if n := atomic.AddInt64(&running, 1); n > p.max {
			p.violation("workers running their loop at once", n)
		}
	}

	worker := func(t *Thread) {
		var n, lost uint64
		atomic.AddUint64(&activations, 1)
		enter()
		idle := time.NewTimer(time.Hour) // armed before each wait below
		idle.Stop()
		// the worker loop: true if it retired, false on shutdown
		retired := func() bool {
			for {
				t.Phase("recv job")
				var j wpdJob
				ok, got := false, false
				select {
				case j, ok = <-jobs:
					got = true
				default:
				}
				if !got {
					// Go 1.19: stop and drain first, so that no stale tick
					// is received after the Reset
					if !idle.Stop() {
						select {
						case <-idle.C:
						default:
						}
					}
					idle.Reset(idleD)
					select {
					case j, ok = <-jobs:
					case <-idle.C:
						// idle for idle_us; a job that raced with the tick is served first
						select {
						case j, ok = <-jobs:
						default:
							atomic.AddInt64(&running, -1) // not running once it leaves
							if tryRetire() {
								return true
							}
							enter() // at min: stay
							continue
						}
					case <-done:
						return false // cancelled
					}
				}
				if !ok {
					return false // drained: shutdown
				}
				t.Phase("work")
				if c.WorkNs > 0 {
					Work(c.WorkNs)
				}
				res := wpdResult{id: j.id, submitted: j.submitted}
				if done == nil {
					results <- res
				} else {
					select {
					case results <- res:
					case <-done:
						lost++ // cancelled with a result in hand: counted, not lost
						return false
					}
				}
				n++
			}
		}()
		idle.Stop()
		if retired {
			atomic.AddUint64(&retirements, 1)
		} else {
			// shutdown (jobs closed and drained, or cancelled): leave the pool
			atomic.AddInt64(&running, -1)
			atomic.StoreInt32(&shutdown, 1)
			atomic.AddInt64(&live, -1)
			atomic.AddUint64(&exits, 1)
		}
		atomic.AddUint64(&delivered, n)
		atomic.AddUint64(&abandoned, lost)
		t.Ops = n
		leave()
		t.Phase("done")
	}

	grow := func() {
		for n := atomic.LoadInt64(&live); n < p.max; n = atomic.LoadInt64(&live) {
			if atomic.CompareAndSwapInt64(&live, n, n+1) {
				if !p.inBounds(n + 1) {
					p.violation("a grow took the pool to", n+1)
				}
				atomic.AddInt32(&senders, 1)
				r.Spawn("worker", worker) // go worker()
				grows++
				if t0 := atomic.SwapUint64(&stepAt, 0); t0 != 0 {
					reaction.Record(Diff(Now(), t0))
				}
				return
			}
		}
	}

	r.Spawn("collector", func(t *Thread) {
		t.Phase("collect")
		for res := range results { // closed by the last sender
			if res.submitted != 0 {
				t.Hist.Record(Since(res.submitted))
			}
			if seen.mark(res.id) {
				if dup == 0 {
					firstDup = res.id
				}
				dup++
			}
			collected++
		}
		t.Ops = collected
		t.Phase("done")
	})
	for i := int64(0); i < p.min; i++ {
		r.Spawn("worker", worker) // the first min
	}
	r.Spawn("scaler", func(t *Thread) {
		ticker := time.NewTicker(tick)
		above := int64(0)
		t.Phase("tick")
	loop:
		for {
			select {
			case <-ticker.C:
			case <-done:
				break loop
			}
			n := atomic.LoadInt64(&live)
			depth := int64(len(jobs))
			if atomic.LoadInt32(&shutdown) == 0 {
				if !p.inBounds(n) {
					p.violation("the scaler sampled a pool size of", n)
				}
				samples++
				sampleSum += uint64(n)
				if n < wmin {
					wmin = n
				}
				if n > wmax {
					wmax = n
				}
			} else if depth == 0 {
				break // jobs closed and drained: nothing left to grow for
			}
			if depth > mark || atomic.LoadInt32(&blocked) != 0 || (depth > 0 && n == 0) {
				above++
			} else {
				above = 0
			}
			if above >= growTicks {
				grow()
				above = 0
			}
		}
		ticker.Stop()
		if ctx != nil && ctx.Err() != nil {
			atomic.StoreInt32(&shutdown, 1)
		}
		leave()
		t.Phase("done")
	})
	r.Spawn("submitter", func(t *Thread) {
		n := uint64(c.Items)
		untilSample := int64(0)
		id, inBurst := uint64(0), uint64(0)
		atomic.StoreUint64(&stepAt, Now()) // the first burst is a step from zero load
	loop:
		for ; r.More(id, n); id++ {
			if burst != 0 && inBurst == burst {
				inBurst = 0
				t.Phase("pause")
				if pause > 0 && !wpdSleep(pause, done) {
					break
				}
				if !r.More(id, n) {
					break
				}
				atomic.StoreUint64(&stepAt, Now())
			}
			inBurst++
			j := wpdJob{id: id}
			if c.LatSample > 0 {
				if untilSample--; untilSample <= 0 {
					untilSample = c.LatSample
					j.submitted = Now()
				}
			}
			t.Phase("submit")
			select {
			case jobs <- j:
				continue
			default:
			}
			atomic.StoreInt32(&blocked, 1) // backlog the scaler can see, capacity 0 included
			if done == nil {
				jobs <- j
			} else {
				select {
				case jobs <- j:
				case <-done:
					atomic.StoreInt32(&blocked, 0)
					break loop // cancelled
				}
			}
			atomic.StoreInt32(&blocked, 0)
		}
		atomic.StoreUint64(&submitted, id)
		t.Ops = id
		t.Phase("close jobs")
		atomic.StoreInt32(&shutdown, 1) // before the close: workers exit after it
		close(jobs)
		t.Phase("done")
	})

	var cancelledAt uint64
	r.Start()
	if cancelMs > 0 {
		SleepNs(uint64(cancelMs) * 1000000)
		cancelledAt = Now()
		cancel()
	}
	r.WaitDuration()
	r.Join()

	var left uint64
	for j := range jobs { // closed by the submitter
		if seen.mark(j.id) {
			dup++
		}
		left++
	}
	if live != 0 {
		r.Fail("pool size %d after every worker left, with %d workers started but never run", live, 0)
	}
	if p.nbad > 0 {
		r.Fail("pool size out of [min %d, max %d]: %s %d (%d violations)", p.min, p.max, p.badWhat, p.badValue,
			p.nbad)
	}
	if activations != retirements+exits {
		r.Fail("workers unaccounted for: %d started != %d retired + %d exited", activations, retirements, exits)
	}
	if dup > 0 {
		r.Fail("job counted twice: %d duplicates (first id %d)", dup, firstDup)
	}
	if submitted != collected+abandoned+left {
		r.Fail("jobs lost: submitted %d != collected %d + abandoned %d + left in queue %d", submitted, collected,
			abandoned, left)
	}
	if delivered != collected {
		r.Fail("results lost: workers delivered %d, collector got %d", delivered, collected)
	}
	if ctx == nil && (abandoned > 0 || left > 0) {
		r.Fail("no cancellation, yet %d abandoned and %d left in the queue", abandoned, left)
	}
	if ctx == nil && c.Duration <= 0 && collected != uint64(c.Items) {
		r.Fail("collected %d results, expected %d", collected, c.Items)
	}
	if cancelledAt != 0 && r.TEnd > cancelledAt && r.TEnd-cancelledAt > 1000000000 {
		r.Fail("cancellation took %.3f s to stop every thread (bound 1 s)", float64(r.TEnd-cancelledAt)/1e9)
	}

	if reaction.Count() > 0 {
		r.Metric("reaction_ns", float64(reaction.Percentile(50)))
	}
	if samples > 0 {
		r.Metric("workers_min", float64(wmin))
		r.Metric("workers_mean", float64(sampleSum)/float64(samples))
		r.Metric("workers_max", float64(wmax))
	}
	r.Metric("grows", float64(grows))
	r.Metric("shrinks", float64(retirements))
	r.Ops = collected
	return nil
}

// wpdSleep is cp_sleep(d, ctx): true after d, false as soon as done closes.
func wpdSleep(d time.Duration, done <-chan struct{}) bool {
	if done == nil {
		time.Sleep(d)
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-done:
		return false
	}
}

func init() {
	register(&Pattern{
		Name:    "workerpool_dynamic",
		Params:  []string{"min", "mark", "grow_ticks", "tick_us", "idle_us", "burst", "pause_us", "cancel_after_ms"},
		Metrics: []string{"reaction_ns", "workers_min", "workers_mean", "workers_max", "grows", "shrinks"},
		Run:     wpdRun,
	})
}
