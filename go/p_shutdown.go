package main

// shutdown: graceful shutdown in phases, the twin of workloads/shutdown.c
// (the seed catalogue's orchestration_shutdown; the playbooks' graceful shutdowns).
// P producers (--producers) submit jobs to a buffered channel (--capacity)
// while intake is open; W workers (--threads) process them (--work-ns each,
// in slices of at most 1 us that look at the hard ctx). Then the server:
//  1. stop intake: close(intakeClosed) wakes every producer out of its
//     select { case queue <- job: case <-intakeClosed: }; when all have
//     left, the queue is closed (a sender closes);
//  2. soft drain: the workers finish what the queue holds; the server waits
//     for them (wg.Wait in a goroutine, select on its done channel and a
//     timer) with a deadline of --set drain_ms=T;
//  3. hard cancel, if the deadline passed: the workers' ctx is cancelled, a
//     job interrupted mid-way is reported cancelled, and the jobs still
//     queued are reported cancelled by the server.
// Shutdown begins once --items jobs have been accepted (count mode) or when
// --duration ends.
//
// One op: a job completed. Latency: its submission -> its completion, 1 in
// LatSample jobs.
//
// Invariants (as the C original): accepted == completed + cancelled, in
// count and in a checksum of the ids; a soft drain in time leaves nothing
// cancelled; stop intake within 1 s, the drain by its deadline (+1 s), the
// hard cancel stops every worker within 1 s; count mode: at least --items
// accepted; every goroutine ended.
//
// --variant=seed: 001 pattern 4's Server.Shutdown(timeout): wait for the
// workers with a timeout and, when it passes, "forcing exit" without
// cancelling them or accounting for their jobs; the workers still running
// (leaked) and the accepted jobs left unresolved (lost) are counted, then the
// workers are released (their ctx cancelled) and waited for.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

const (
	sdSliceNs = 1000
	sdBoundNs = 1000000000
)

type sdJob struct{ id, submitted uint64 }

type sdState struct {
	r                      *Run
	seed                   bool
	drainNs                uint64
	queue                  chan sdJob
	intakeClosed           chan struct{} // phase 1: producers leave
	quota                  chan struct{} // time to shut down
	quotaOnce              sync.Once
	hard                   context.Context // phase 3: the workers' ctx
	cancelHard             context.CancelFunc
	producers              sync.WaitGroup
	workers                sync.WaitGroup
	nextID                 uint64
	accepted               uint64
	acceptedSum            uint64
	completed              uint64
	completedSum           uint64
	cancelled              uint64
	cancelledSum           uint64
	liveWorkers            int32
	tIntake, tDrain, tHard uint64
	fail                   string
	nfail                  int
}

func (s *sdState) note(format string, a ...interface{}) {
	if s.nfail == 0 {
		s.fail = fmt.Sprintf(format, a...)
	}
	s.nfail++
}

func (s *sdState) fireQuota() { s.quotaOnce.Do(func() { close(s.quota) }) }

func (s *sdState) producer(t *Thread) {
	r := s.r
	sample := r.Cfg.LatSample
	items := uint64(r.Cfg.Items)
	countMode := r.Cfg.Duration <= 0
	untilSample := int64(0)
	var n, sum uint64
	t.Phase("submit")
	for {
		j := sdJob{id: atomic.AddUint64(&s.nextID, 1) - 1}
		if sample > 0 {
			if untilSample--; untilSample <= 0 {
				untilSample = sample
				j.submitted = Now()
			}
		}
		select {
		case s.queue <- j:
		case <-s.intakeClosed:
			atomic.AddUint64(&s.acceptedSum, sum) // this job was not accepted
			t.Ops = n
			t.Phase("done")
			s.producers.Done()
			return
		}
		n++
		sum += Mix(j.id)
		if atomic.AddUint64(&s.accepted, 1) == items && countMode {
			s.fireQuota()
		}
	}
}

// process: busy work in slices, each after a look at the hard ctx (a
// select on Done() with a default: lock-free, where ctx.Err() takes the
// ctx's mutex); false if the hard cancel interrupted it.
func (s *sdState) process(work int64) bool {
	for done := int64(0); done < work; done += sdSliceNs {
		select {
		case <-s.hard.Done():
			return false
		default:
		}
		left := work - done
		if left > sdSliceNs {
			left = sdSliceNs
		}
		Work(left)
	}
	return true
}

func (s *sdState) worker(t *Thread) {
	work := s.r.Cfg.WorkNs
	var n uint64
	defer func() {
		t.Ops = n
		t.Phase("done")
		atomic.AddInt32(&s.liveWorkers, -1)
		s.workers.Done()
	}()
	for {
		t.Phase("recv job")
		var j sdJob
		select { // as cp_chan_recv(queue, hard) after a look at hard: a cancelled worker takes no job
		case <-s.hard.Done():
			return
		default:
		}
		select {
		case jj, ok := <-s.queue:
			if !ok {
				return
			}
			j = jj
		case <-s.hard.Done():
			return
		}
		t.Phase("job")
		if !s.process(work) {
			atomic.AddUint64(&s.cancelledSum, Mix(j.id))
			atomic.AddUint64(&s.cancelled, 1)
			return
		}
		if j.submitted != 0 {
			t.Hist.Record(Since(j.submitted))
		}
		// published per job: the seed variant counts what is unresolved when it gives up
		atomic.AddUint64(&s.completedSum, Mix(j.id))
		atomic.AddUint64(&s.completed, 1)
		n++
	}
}

// sdWaitWithin waits for wg for at most bound: the seed's
// `go func() { wg.Wait(); close(done) }()` and a select with a timer. It
// returns done (closed once wg is done: wait on it to finish the wait, its
// goroutine then ends) and whether wg was done by the bound.
func sdWaitWithin(wg *sync.WaitGroup, bound uint64) (<-chan struct{}, bool) {
	done := make(chan struct{})
	go func() {
		wg.Wait()
		close(done)
	}()
	return done, sdWaitDone(done, bound)
}

func sdWaitDone(done <-chan struct{}, bound uint64) bool {
	timer := time.NewTimer(time.Duration(bound))
	defer timer.Stop()
	select {
	case <-done:
		return true
	case <-timer.C:
		select { // done by the deadline, both ready at once
		case <-done:
			return true
		default:
			return false
		}
	}
}

func (s *sdState) server(t *Thread) {
	r := s.r
	t.Phase("serving")
	tick := time.NewTicker(10 * time.Millisecond)
	for serving := !r.Stopped(); serving; {
		select {
		case <-s.quota:
			serving = false
		case <-tick.C:
			serving = !r.Stopped()
		}
	}
	tick.Stop()

	// phase 1: stop intake
	t.Phase("stop intake")
	t0 := Now()
	close(s.intakeClosed)
	if done, ok := sdWaitWithin(&s.producers, sdBoundNs); !ok {
		s.note("stop intake: producers still submitting %.3f s after intake closed (bound 1 s)",
			float64(Since(t0))/1e9)
		<-done
	}
	close(s.queue)
	t1 := Now()
	s.tIntake = t1 - t0

	// phase 2: soft drain, with a deadline
	t.Phase("soft drain")
	done, ok := sdWaitWithin(&s.workers, s.drainNs)
	t2 := Now()
	s.tDrain = t2 - t1
	if ok && s.tDrain > s.drainNs+sdBoundNs {
		s.note("soft drain: took %.3f s, its deadline was %.3f s", float64(s.tDrain)/1e9, float64(s.drainNs)/1e9)
	}

	if !ok && s.seed {
		// the seed: "Shutdown timed out, forcing exit" -- it returns here
		leaked := atomic.LoadInt32(&s.liveWorkers)
		acc := atomic.LoadUint64(&s.accepted)
		resolved := atomic.LoadUint64(&s.completed) + atomic.LoadUint64(&s.cancelled)
		if leaked != 0 || acc != resolved {
			lost := uint64(0)
			if acc > resolved {
				lost = acc - resolved
			}
			s.note("seed shutdown: gave up at the drain deadline and returned with %d worker goroutines still "+
				"running (leaked) and %d accepted jobs neither completed nor reported cancelled (lost)", leaked, lost)
		}
		// release what it left, after counting: cancel, wait, account
		t.Phase("seed: release leaked workers")
		s.cancelHard()
		<-done
	} else if !ok {
		// phase 3: hard cancel
		t.Phase("hard cancel")
		s.cancelHard()
		if !sdWaitDone(done, sdBoundNs) {
			s.note("hard cancel: workers still running %.3f s after the cancel (bound 1 s)", float64(Since(t2))/1e9)
			<-done
		}
		s.tHard = Since(t2)
	}
	s.cancelHard()

	// what the queue still holds is reported cancelled
	t.Phase("report queued")
	var left, leftSum uint64
	for j := range s.queue {
		left++
		leftSum += Mix(j.id)
	}
	atomic.AddUint64(&s.cancelled, left)
	atomic.AddUint64(&s.cancelledSum, leftSum)
	if c := atomic.LoadUint64(&s.cancelled); ok && c != 0 {
		s.note("the soft drain finished in time, yet %d jobs were cancelled", c)
	}
	t.Phase("done")
}

func shutdownRun(r *Run) error {
	c := r.Cfg
	s := &sdState{r: r, seed: c.Variant == "seed", drainNs: uint64(c.Param("drain_ms")) * 1000000,
		queue: make(chan sdJob, c.Capacity), intakeClosed: make(chan struct{}), quota: make(chan struct{})}
	s.hard, s.cancelHard = context.WithCancel(context.Background())
	defer s.cancelHard()
	producers, workers := int(c.Producers), int(c.Threads)
	s.liveWorkers = int32(workers)
	s.producers.Add(producers)
	s.workers.Add(workers)
	for i := 0; i < workers; i++ {
		r.Spawn("worker", s.worker)
	}
	for i := 0; i < producers; i++ {
		r.Spawn("producer", s.producer)
	}
	r.Spawn("server", s.server)
	r.Start()
	r.WaitDuration()
	if c.Duration > 0 {
		s.fireQuota()
	}
	r.Join()

	acc, accSum := s.accepted, s.acceptedSum
	done, cancelled := s.completed, s.cancelled
	resSum := s.completedSum + s.cancelledSum
	if s.nfail > 0 {
		r.Fail("%s", s.fail)
	}
	if done+cancelled != acc {
		what := "jobs resolved twice"
		if done+cancelled < acc {
			what = "jobs lost"
		}
		r.Fail("accepted %d jobs, resolved %d (%d completed + %d cancelled): %s", acc, done+cancelled, done,
			cancelled, what)
	} else if resSum != accSum {
		r.Fail("checksum of resolved jobs %016x != accepted %016x: a job resolved twice and another lost", resSum,
			accSum)
	}
	if c.Duration <= 0 && !r.Stopped() && acc < uint64(c.Items) {
		r.Fail("accepted %d jobs before shutting down, expected at least %d", acc, c.Items)
	}
	r.Metric("stop_intake_ns", float64(s.tIntake))
	r.Metric("drain_ns", float64(s.tDrain))
	r.Metric("hard_cancel_ns", float64(s.tHard))
	r.Metric("cancelled", float64(cancelled))
	r.Ops = done
	return nil
}

func init() {
	register(&Pattern{Name: "shutdown", Params: []string{"drain_ms"}, Variants: []string{"default", "seed"},
		Metrics: []string{"stop_intake_ns", "drain_ns", "hard_cancel_ns", "cancelled"}, Run: shutdownRun})
}
