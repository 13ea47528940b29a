package main

// ratelimit_perclient: one token bucket per client, kept in a map keyed by
// client id; T goroutines (--threads) serve requests whose client ids follow
// a Zipf law over C clients, and the population drifts (new ids arrive, old
// ones go quiet). The twin of workloads/ratelimit_perclient.c, after the
// playbook's ClientLimiter of seed 003 (a map[string]*rate.Limiter under one
// sync.Mutex; GetLimiter creates a limiter on first sight; Allow(clientID)
// is GetLimiter(id).Allow()).
//
// The default map: S shards, each a Go map[uint64]*entry under its own
// sync.Mutex; a client's bucket is an x/time/rate rate.Limiter (starts full,
// burst, limit tokens/s) in its entry, and Allow runs under the shard's lock
// (lookup, insert and AllowN in one critical section, the time read inside
// it, so that an eviction can never race with a use and the limiter sees
// its times in order). The entry keeps the time at which its bucket is full
// again (from Limiter.TokensAt after each admission). A janitor goroutine
// on a time.Ticker (period max(1 ms, idle_ms / 2)) evicts every entry idle
// for idle_ms whose bucket is full again: a full bucket is exactly a new
// one, so eviction never gives a client more than its rate.
//
// One op: one Allow(client) (admitted or refused). Latency: the call, 1 in
// --lat-sample. Parameters, invariants and metrics: those of the C original
// (see its header); the per-client accounting is kept with sync/atomic.
//
// Variant seed: the playbook's map under one mutex that creates a
// rate.Limiter (with its own mutex) on first sight and never removes one:
// the map grows with every client ever seen (map_size_end), and the idle
// check fails with the count of leaked entries.

import (
	"context"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

const rlpcBoundNs = 1000000000

type rlpcEntry struct {
	lim  *rate.Limiter
	last atomic.Uint64 // last request (Now())
	full atomic.Uint64 // the time (Now()) at which the bucket is full again
}

type rlpcShard struct {
	mu sync.Mutex
	m  map[uint64]*rlpcEntry
	_  [48]byte // one cache line per shard
}

type rlpcState struct {
	seed            bool // the seed's map: one shard, no eviction
	sh              []rlpcShard
	limit           float64
	burst           int64
	idleNs, period  uint64
	space           uint64   // ids are < space
	adm, first      []uint64 // per id, atomics
	cdf             []float64
	clients, churn  uint64
	size, sizeMax   atomic.Uint64
	evicted         atomic.Uint64
	over            atomic.Uint64
	overID, overK   atomic.Uint64
	overDt, lastUse atomic.Uint64
	lastExit        atomic.Uint64
	calls, admitted atomic.Uint64
	allowNs, allowN atomic.Uint64
}

func rlpcMax(a *atomic.Uint64, v uint64) {
	for prev := a.Load(); prev < v && !a.CompareAndSwap(prev, v); prev = a.Load() {
	}
}

func rlpcHash(key uint64) uint64 { return Mix(key ^ 0x5bd1e995) }

func (s *rlpcState) shardOf(h uint64) *rlpcShard { return &s.sh[(h>>48)%uint64(len(s.sh))] }

// lookup finds or creates id's entry (sh.mu held). A new bucket is full.
func (s *rlpcState) lookup(sh *rlpcShard, id, now uint64) *rlpcEntry {
	e := sh.m[id]
	if e == nil {
		e = &rlpcEntry{lim: rate.NewLimiter(rate.Limit(s.limit), int(s.burst))}
		e.last.Store(now)
		e.full.Store(now)
		sh.m[id] = e
		rlpcMax(&s.sizeMax, s.size.Add(1))
	}
	return e
}

// account: one admission of id at now, after the limiter admitted it.
func (s *rlpcState) account(id, now uint64) {
	k := atomic.AddUint64(&s.adm[id], 1)
	dt := Diff(now, atomic.LoadUint64(&s.first[id]))
	if float64(k) > float64(s.burst)+float64(dt)*s.limit/1e9+0.01 && s.over.Add(1) == 1 {
		s.overID.Store(id)
		s.overK.Store(k)
		s.overDt.Store(dt)
	}
}

// bucket: AllowN(now, 1) on e's limiter; admitted, the time it is full again.
func (s *rlpcState) bucket(e *rlpcEntry, id, now uint64) bool {
	if atomic.LoadUint64(&s.first[id]) == 0 {
		atomic.CompareAndSwapUint64(&s.first[id], 0, now)
	}
	t := time.Now()
	if !e.lim.AllowN(t, 1) {
		return false
	}
	now = Now() // after t: the accounting's elapsed time is never short
	need := (float64(s.burst) - e.lim.TokensAt(t)) / s.limit * 1e9
	if need < 0 {
		need = 0
	}
	e.full.Store(now + uint64(math.Ceil(need)) + 1)
	s.account(id, now)
	return true
}

func (s *rlpcState) allow(id uint64) bool {
	sh := s.shardOf(rlpcHash(id))
	sh.mu.Lock()
	now := Now()
	e := s.lookup(sh, id, now)
	if !s.seed {
		e.last.Store(now)
		ok := s.bucket(e, id, now)
		sh.mu.Unlock()
		return ok
	}
	// the seed: GetLimiter under the map's lock, then Allow under the limiter's own
	sh.mu.Unlock()
	now = Now()
	e.last.Store(now)
	return s.bucket(e, id, now)
}

// evictableFor: idle for idleNs and full again at now; for how long.
func (s *rlpcState) evictableFor(e *rlpcEntry, now uint64) (uint64, bool) {
	t := e.last.Load() + s.idleNs
	if f := e.full.Load(); f > t {
		t = f
	}
	if now < t {
		return 0, false
	}
	return now - t, true
}

func (s *rlpcState) sweep() {
	for i := range s.sh {
		sh := &s.sh[i]
		sh.mu.Lock()
		now, gone := Now(), uint64(0)
		for id, e := range sh.m {
			if _, ok := s.evictableFor(e, now); ok {
				delete(sh.m, id)
				gone++
			}
		}
		sh.mu.Unlock()
		if gone != 0 {
			s.size.Add(^(gone - 1))
			s.evicted.Add(gone)
		}
	}
}

// countStale: entries evictable for at least age (every shard locked in turn).
func (s *rlpcState) countStale(age uint64) uint64 {
	var n uint64
	for i := range s.sh {
		sh := &s.sh[i]
		sh.mu.Lock()
		now := Now()
		for _, e := range sh.m {
			if since, ok := s.evictableFor(e, now); ok && since >= age {
				n++
			}
		}
		sh.mu.Unlock()
	}
	return n
}

func (s *rlpcState) zipfRank(rng *uint64) uint64 {
	*rng = Mix(*rng)
	u := float64(*rng>>11) * 0x1p-53
	lo, hi := 0, len(s.cdf)-1
	for lo < hi {
		mid := (lo + hi) / 2
		if s.cdf[mid] > u {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return uint64(lo)
}

func rlpcFired(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func rlpcWaitFor(done <-chan struct{}, ns uint64) {
	tm := time.NewTimer(time.Duration(ns))
	defer tm.Stop()
	select {
	case <-done:
	case <-tm.C:
	}
}

func rlpcRun(r *Run) error {
	c := r.Cfg
	threads := int(c.Threads)
	cancelMs := c.Param("cancel_after_ms")
	s := &rlpcState{
		seed:    c.Variant == "seed",
		clients: uint64(c.Param("clients")),
		churn:   uint64(c.Param("churn")),
		limit:   float64(c.Param("limit")),
		burst:   c.Param("burst"),
		idleNs:  uint64(c.Param("idle_ms")) * 1000000,
	}
	s.space = s.clients
	if s.churn != 0 {
		s.space = 4 * s.clients
	}
	s.period = s.idleNs / 2
	if s.period < 1000000 {
		s.period = 1000000
	}
	nshards := int(c.Param("shards"))
	if s.seed {
		nshards = 1
	}
	s.sh = make([]rlpcShard, nshards)
	for i := range s.sh {
		s.sh[i].m = map[uint64]*rlpcEntry{}
	}
	s.adm = make([]uint64, s.space)
	s.first = make([]uint64, s.space)
	// Zipf: P(rank k) ~ 1 / (k + 1)^skew
	s.cdf = make([]float64, s.clients)
	sum, e := 0.0, float64(c.Param("skew"))/100
	for k := range s.cdf {
		s.cdf[k] = math.Pow(float64(k+1), -e)
		sum += s.cdf[k]
	}
	acc := 0.0
	for k := range s.cdf {
		acc += s.cdf[k]
		s.cdf[k] = acc / sum
	}
	s.cdf[len(s.cdf)-1] = 2 // u < 1 always lands

	ctx, cancel := context.WithCancel(context.Background()) // the workers': cancel_after_ms
	defer cancel()
	jctx, jcancel := context.WithCancel(context.Background()) // the janitor's: ended after the idle check
	defer jcancel()
	done, janitorDone := ctx.Done(), jctx.Done()
	workersDone := make(chan struct{})
	live := int32(threads)
	var sizeEnd uint64 // set by the last worker, read after workersDone
	if !s.seed {
		r.Spawn("janitor", func(t *Thread) {
			tk := time.NewTicker(time.Duration(s.period))
			defer tk.Stop()
			t.Phase("tick")
			for {
				select {
				case <-tk.C:
					t.Phase("sweep")
					s.sweep()
					t.Phase("tick")
				case <-janitorDone:
					t.Phase("done")
					return
				}
			}
		})
	}
	per, extra := uint64(c.Items)/uint64(threads), uint64(c.Items)%uint64(threads)
	for i := 0; i < threads; i++ {
		index, quota := uint64(i), per
		if index < extra {
			quota++
		}
		r.Spawn("worker", func(t *Thread) {
			rng := Mix(c.Seed*31 + index)
			var i, ok, tsum, tn uint64
			untilSample := int64(0)
			t.Phase("Allow")
			for ; r.More(i, quota) && !rlpcFired(done); i++ {
				id := (s.zipfRank(&rng) + i*s.churn/1000) % s.space
				if c.LatSample > 0 {
					if untilSample--; untilSample <= 0 {
						untilSample = c.LatSample
						c0 := Now()
						if s.allow(id) {
							ok++
						}
						d := Since(c0)
						t.Hist.Record(d)
						tsum += d
						tn++
						continue
					}
				}
				if s.allow(id) {
					ok++
				}
			}
			t1 := Now()
			s.calls.Add(i)
			s.admitted.Add(ok)
			s.allowNs.Add(tsum)
			s.allowN.Add(tn)
			rlpcMax(&s.lastUse, Now())
			rlpcMax(&s.lastExit, t1)
			t.Ops = i
			if atomic.AddInt32(&live, -1) == 0 {
				sizeEnd = s.size.Load() // after the last request
				close(workersDone)
			}
			t.Phase("done")
		})
	}

	var cancelledAt uint64
	r.Start()
	if cancelMs > 0 {
		rlpcWaitFor(workersDone, uint64(cancelMs)*1000000)
		if !rlpcFired(workersDone) {
			cancelledAt = Now()
			cancel()
		}
	}
	// time-based: until the duration ends, or until every worker has stopped
	if c.Duration > 0 {
		end := r.TStart + uint64(c.Duration*1e9)
		if now := Now(); end > now {
			rlpcWaitFor(workersDone, end-now)
		}
		if !rlpcFired(workersDone) {
			r.WaitDuration()
		}
	}
	<-workersDone
	var perClient, clientsSeen uint64
	for id := uint64(0); id < s.space; id++ { // the workers are done: stable
		perClient += s.adm[id]
		if s.first[id] != 0 {
			clientsSeen++
		}
	}

	// Idle clients go: once every client has been idle for idle_ms (plus two
	// janitor periods), an entry evictable for two periods is a leak unless
	// the janitor removes it within 1 s.
	if quiet, now := s.lastUse.Load()+s.idleNs+2*s.period, Now(); quiet > now {
		SleepNs(quiet - now)
	}
	t0 := Now()
	stale := s.countStale(2 * s.period)
	for stale != 0 && Since(t0) < rlpcBoundNs {
		SleepNs(1000000)
		stale = s.countStale(2 * s.period)
	}
	if stale != 0 {
		why := ""
		if s.seed {
			why = ": the seed's map never removes a limiter"
		}
		r.Fail("leaked %d map entries: clients idle for %d ms with a full bucket still in the map %.3f s "+
			"later (map size %d, %d clients seen)%s", stale, c.Param("idle_ms"), float64(Since(t0))/1e9,
			s.size.Load(), clientsSeen, why)
	}
	jcancel()
	r.Join()
	// the op rate is the workers': the idle check above is not part of it
	if le := s.lastExit.Load(); le > r.TStart {
		r.TEnd = le
	}

	calls, admitted := s.calls.Load(), s.admitted.Load()
	if o := s.over.Load(); o != 0 {
		dt := s.overDt.Load()
		r.Fail("client %d was admitted %d times %.6f s after its first request: more than burst %d + "+
			"limit %.0f/s x elapsed = %.2f (%d admissions over the bound)", s.overID.Load(), s.overK.Load(),
			float64(dt)/1e9, s.burst, s.limit, float64(s.burst)+float64(dt)*s.limit/1e9, o)
	}
	if c.Duration <= 0 && cancelledAt == 0 && calls != uint64(c.Items) {
		r.Fail("%d Allow calls made, expected --items %d", calls, c.Items)
	}
	if perClient != admitted {
		r.Fail("per-client admissions add up to %d, the workers counted %d", perClient, admitted)
	}
	// one entry per client, and the size counter matches
	seen := make([]bool, s.space)
	var entries, dup uint64
	for i := range s.sh {
		for id := range s.sh[i].m {
			entries++
			if id >= s.space || seen[id] {
				dup++
			} else {
				seen[id] = true
			}
		}
	}
	if dup != 0 {
		r.Fail("%d map entries duplicate a client (or carry a bad key)", dup)
	}
	if entries != s.size.Load() {
		r.Fail("the map holds %d entries, its size counter says %d", entries, s.size.Load())
	}
	if le := s.lastExit.Load(); cancelledAt != 0 && le > cancelledAt && le-cancelledAt > rlpcBoundNs {
		r.Fail("cancellation took %.3f s to stop every worker (bound 1 s)", float64(le-cancelledAt)/1e9)
	}

	if n := s.allowN.Load(); n != 0 {
		r.Metric("allow_ns", float64(s.allowNs.Load())/float64(n))
	}
	r.Metric("map_size_max", float64(s.sizeMax.Load()))
	r.Metric("map_size_end", float64(sizeEnd))
	r.Metric("evicted", float64(s.evicted.Load()))
	pct := 0.0
	if calls != 0 {
		pct = 100 * float64(admitted) / float64(calls)
	}
	r.Metric("admitted_pct", pct)
	r.Metric("clients_seen", float64(clientsSeen))
	r.Ops = calls
	return nil
}

func init() {
	register(&Pattern{
		Name:     "ratelimit_perclient",
		Params:   []string{"clients", "skew", "churn", "limit", "burst", "idle_ms", "shards", "cancel_after_ms"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"allow_ns", "map_size_max", "map_size_end", "evicted", "admitted_pct", "clients_seen"},
		Run:      rlpcRun,
	})
}
