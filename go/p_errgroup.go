package main

// errgroup: the twin of workloads/errgroup.c, golang.org/x/sync/errgroup
// itself (the seed catalogue's orchestration_errgroup; the playbooks' fetchAll and
// fetchAllLimited). An owner goroutine makes groups with
// errgroup.WithContext, calls g.Go for --set tasks=N tasks (SetLimit(L) with
// --set limit=L > 0), then g.Wait(); --set fail_at=K makes the K-th task
// return its own error, which cancels the group's ctx.
//
// The C original runs the tasks on --threads runner threads because C has no
// goroutines; here g.Go starts one goroutine per task, as errgroup does, so
// --threads has nothing to size (the thread column counts the owner only) and
// max_active can reach N without a limit (the C runners cap it at --threads).
//
// A task: its own error at once if it is the K-th, else --work-ns of busy
// work in slices of at most 1 us, each after a look at ctx.Err(); a task that
// finds the ctx ended returns ctx.Err() (it "saw the cancel").
//
// One op: one task run through the group. Latency: the g.Go call (which
// blocks while L tasks run) -> the task returned, 1 in LatSample tasks.
//
// Invariants (as the C original, per group): Wait returns task K's error
// (never a ctx error) or nil; Wait returns only after every task returned; at
// most L tasks at once; completed + cancelled + failed == N, failed == (K <=
// N), no cancel without an error; the ctx is cancelled after Wait, also on
// success; no token of the limit held after Wait; a running task sees the
// cancel within 1 s; every goroutine ended.
//
// --variant=seed: playbook 003's hand-rolled bounded group (processItems: a
// channel semaphore, errCh of capacity 1 written with select-default, the
// launch loop returns the first error before wg.Wait()); the tasks still
// running when it returns are counted as leaked goroutines, then released
// by cancelling the group's ctx, and waited for.

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"sync/atomic"

	"golang.org/x/sync/errgroup"
)

const (
	egSliceNs       = 1000
	egCancelBoundNs = 1000000000
)

// egTaskErr is task index's own error.
type egTaskErr struct{ index int64 }

func (e *egTaskErr) Error() string { return fmt.Sprintf("task %d's error", e.index) }

func egDescribe(err error) string {
	var te *egTaskErr
	switch {
	case err == nil:
		return "nil"
	case errors.As(err, &te):
		return te.Error()
	default:
		return fmt.Sprintf("ctx error (%v)", err)
	}
}

type egState struct {
	r                            *Run
	seed                         bool
	tasks, limit, failAt, workNs int64
	tGo, tRet                    []uint64 // per task of the group: the owner's Go() stamp (0: not sampled), its return
	// this group (reset by the owner between groups, when no task runs)
	tCancel                                                uint64 // when task K returned its error (errOnce then cancels)
	started, returned, completed, cancelled, failed, stale int64
	group                                                  uint32 // after the 64-bit atomics: their alignment on 32-bit
	// the whole run
	active, maxActive int64
	worstSeenNs       uint64
	// the owner's findings
	fail                string
	nfail               int
	ran, cancelledTotal uint64
	worstWaitNs         uint64
}

func (s *egState) note(format string, a ...interface{}) {
	if s.nfail == 0 {
		s.fail = fmt.Sprintf(format, a...)
	}
	s.nfail++
}

func egMaxU64(p *uint64, v uint64) {
	for w := atomic.LoadUint64(p); v > w && !atomic.CompareAndSwapUint64(p, w, v); w = atomic.LoadUint64(p) {
	}
}

func egMaxI64(p *int64, v int64) {
	for w := atomic.LoadInt64(p); v > w && !atomic.CompareAndSwapInt64(p, w, v); w = atomic.LoadInt64(p) {
	}
}

// work is the task's body: its own error, or busy work watching ctx.
func (s *egState) work(ctx context.Context, index int64) error {
	if index == s.failAt {
		atomic.AddInt64(&s.failed, 1)
		return &egTaskErr{index}
	}
	start := Now()
	for done := int64(0); ; done += egSliceNs {
		select { // a look at the ctx: lock-free, where ctx.Err() takes its mutex
		case <-ctx.Done():
			// how long the cancel took to reach this task (from its start, if later)
			now, tc := Now(), atomic.LoadUint64(&s.tCancel)
			from := tc
			if start > from {
				from = start
			}
			if tc != 0 {
				egMaxU64(&s.worstSeenNs, Diff(now, from))
			}
			atomic.AddInt64(&s.cancelled, 1)
			return ctx.Err()
		default:
		}
		if done >= s.workNs {
			break
		}
		left := s.workNs - done
		if left > egSliceNs {
			left = egSliceNs
		}
		Work(left)
	}
	atomic.AddInt64(&s.completed, 1)
	return nil
}

// task is the function passed to Go: the body, counted.
func (s *egState) task(ctx context.Context, group uint32, index int64) error {
	if group != atomic.LoadUint32(&s.group) {
		atomic.AddInt64(&s.stale, 1)
	}
	egMaxI64(&s.maxActive, atomic.AddInt64(&s.active, 1))
	err := s.work(ctx, index)
	atomic.AddInt64(&s.active, -1)
	if !s.seed {
		s.tRet[index-1] = Now()
		if err != nil && index == s.failAt {
			atomic.StoreUint64(&s.tCancel, Now()) // errOnce.Do cancels the ctx right after this return
		}
	}
	atomic.AddInt64(&s.returned, 1)
	return err
}

// egTokens is how many of the limit's tokens g holds: errgroup's sem
// channel is unexported, so the check reads its length through reflect
// (-1: no limit set, or no such field in this errgroup).
func egTokens(g *errgroup.Group) int {
	if egSemField == nil {
		return -1
	}
	v := reflect.ValueOf(g).Elem().FieldByIndex(egSemField)
	if v.IsNil() {
		return -1
	}
	return v.Len()
}

var egSemField = func() []int {
	f, ok := reflect.TypeOf((*errgroup.Group)(nil)).Elem().FieldByName("sem")
	if !ok || f.Type.Kind() != reflect.Chan {
		return nil
	}
	return f.Index
}()

// seedGroup runs one group as playbook 003's processItems, which returns
// the first error from inside the launch loop without waiting for the tasks
// in flight. It counts what that return left running (started, returned at
// that moment), then releases those tasks by cancelling the group's ctx
// (they watch it) and waits for them.
func (s *egState) seedGroup(t *Thread, g uint32, size int64, sem chan struct{}, errCh chan error) (err error,
	started, returned int64) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	early := false
	processItems := func() error {
		for i := int64(1); i <= size; i++ {
			t.Phase("seed: select")
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				early = true
				return ctx.Err()
			case err := <-errCh:
				early = true
				return err
			}
			wg.Add(1)
			atomic.AddInt64(&s.started, 1)
			go func(i int64) {
				defer wg.Done()
				defer func() { <-sem }()
				if err := s.task(ctx, g, i); err != nil {
					select {
					case errCh <- err:
					default:
					}
				}
			}(i)
		}
		t.Phase("seed: wg.Wait")
		wg.Wait()
		select {
		case err := <-errCh:
			return err
		default:
			return nil
		}
	}
	err = processItems()
	started, returned = atomic.LoadInt64(&s.started), atomic.LoadInt64(&s.returned)
	if early {
		// release what the seed left running, after counting
		t.Phase("seed: release leaked tasks")
		cancel()
		wg.Wait()
		select {
		case <-errCh:
		default:
		}
	}
	return err, started, returned
}

func (s *egState) owner(t *Thread) {
	r := s.r
	n := uint64(r.Cfg.Items)
	sample := r.Cfg.LatSample
	untilSample := int64(0)
	var sem chan struct{}
	var errCh chan error
	if s.seed {
		// the seed needs a semaphore channel: with no limit it is as wide as the group
		semCap := s.limit
		if semCap <= 0 {
			semCap = s.tasks
		}
		sem = make(chan struct{}, semCap)
		errCh = make(chan error, 1)
	}
	offered := uint64(0)
	for g := uint32(0); r.More(offered, n) && s.nfail == 0; g++ {
		size := s.tasks
		if r.Cfg.Duration <= 0 && n-offered < uint64(s.tasks) {
			size = int64(n - offered)
		}
		offered += uint64(size)
		fails := s.failAt >= 1 && s.failAt <= size
		t.Phase("new group")
		atomic.StoreUint64(&s.tCancel, 0)
		atomic.StoreUint32(&s.group, g)
		for _, p := range []*int64{&s.started, &s.returned, &s.completed, &s.cancelled, &s.failed} {
			atomic.StoreInt64(p, 0)
		}

		var err error
		var ctx context.Context
		var grp *errgroup.Group
		var started, returned int64
		if !s.seed {
			grp, ctx = errgroup.WithContext(context.Background())
			if s.limit > 0 {
				grp.SetLimit(int(s.limit))
			}
			for i := int64(1); i <= size; i++ {
				tGo := uint64(0)
				if sample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = sample
						tGo = Now()
					}
				}
				s.tGo[i-1] = tGo
				i, g := i, g
				t.Phase("Go")
				atomic.AddInt64(&s.started, 1)
				grp.Go(func() error { return s.task(ctx, g, i) })
			}
			t.Phase("Wait")
			err = grp.Wait()
			started, returned = atomic.LoadInt64(&s.started), atomic.LoadInt64(&s.returned)
		} else {
			err, started, returned = s.seedGroup(t, g, size, sem, errCh)
		}
		t1 := Now()

		// Wait returns only after every task returned
		if returned != started {
			if s.seed {
				s.note("group %d: Wait returned while %d of %d started tasks were still running: leaked %d "+
					"goroutines (the seed returns the first error without waiting)", g, started-returned, started,
					started-returned)
			} else {
				s.note("group %d: Wait returned with %d of %d tasks still running", g, started-returned, started)
			}
		}
		// the first error
		var want error
		if fails {
			want = &egTaskErr{s.failAt}
		}
		var te *egTaskErr
		if got := (err == nil && !fails) || (fails && errors.As(err, &te) && te.index == s.failAt); !got {
			s.note("group %d: Wait returned %s, the first error was %s", g, egDescribe(err), egDescribe(want))
		}
		if !s.seed {
			completed, cancelled := atomic.LoadInt64(&s.completed), atomic.LoadInt64(&s.cancelled)
			failed := atomic.LoadInt64(&s.failed)
			wantFailed := int64(0)
			if fails {
				wantFailed = 1
			}
			if started != size {
				s.note("group %d: %d tasks started, Go() was called %d times", g, started, size)
			}
			if completed+cancelled+failed != size || failed != wantFailed {
				s.note("group %d: %d tasks: %d completed + %d saw the cancel + %d failed (want %d)", g, size,
					completed, cancelled, failed, wantFailed)
			}
			if !fails && cancelled != 0 {
				s.note("group %d: %d tasks saw a cancel, yet no task failed", g, cancelled)
			}
			if e := ctx.Err(); e != context.Canceled {
				s.note("group %d: the ctx is not cancelled after Wait returned (%v)", g, e)
			}
			if tc := atomic.LoadUint64(&s.tCancel); fails && tc != 0 {
				if d := Diff(t1, tc); d > s.worstWaitNs {
					s.worstWaitNs = d
				}
			}
			if seen := atomic.LoadUint64(&s.worstSeenNs); seen > egCancelBoundNs {
				s.note("group %d: a running task saw the cancel %.3f s after it (bound 1 s)", g, float64(seen)/1e9)
			}
			s.cancelledTotal += uint64(cancelled)
			for i := int64(0); i < size; i++ {
				if s.tGo[i] != 0 {
					t.Hist.Record(Diff(s.tRet[i], s.tGo[i]))
				}
			}
			if k := egTokens(grp); k > 0 {
				s.note("group %d: %d tokens of the limit still held after Wait", g, k)
			}
		} else if len(sem) != 0 {
			s.note("group %d: %d tokens of the limit still held after Wait", g, len(sem))
		}
		s.ran += uint64(atomic.LoadInt64(&s.returned))
		if st := atomic.LoadInt64(&s.stale); st != 0 {
			s.note("group %d: %d tasks of another group", g, st)
		}
	}
	t.Ops = s.ran
	t.Phase("done")
}

func errgroupRun(r *Run) error {
	c := r.Cfg
	s := &egState{r: r, seed: c.Variant == "seed", tasks: c.Param("tasks"), limit: c.Param("limit"),
		failAt: c.Param("fail_at"), workNs: c.WorkNs}
	if s.tasks < 1 {
		return fmt.Errorf("--set tasks=%d: at least 1", s.tasks)
	}
	s.tGo = make([]uint64, s.tasks)
	s.tRet = make([]uint64, s.tasks)
	r.Spawn("owner", s.owner)
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
	if s.limit > 0 && s.maxActive > s.limit {
		r.Fail("%d tasks ran at once, the limit is %d", s.maxActive, s.limit)
	}
	r.Metric("max_active", float64(s.maxActive))
	r.Metric("cancelled", float64(s.cancelledTotal))
	r.Metric("cancel_seen_ns", float64(s.worstSeenNs))
	r.Metric("cancel_to_wait_ns", float64(s.worstWaitNs))
	r.Ops = s.ran
	if c.Duration <= 0 && !r.Stopped() && s.nfail == 0 && s.ran != uint64(c.Items) {
		r.Fail("%d tasks ran, expected %d", s.ran, c.Items)
	}
	return nil
}

func init() {
	register(&Pattern{Name: "errgroup", Params: []string{"tasks", "limit", "fail_at"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"cancel_seen_ns", "cancel_to_wait_ns", "max_active", "cancelled"}, Run: errgroupRun})
}
