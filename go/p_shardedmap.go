package main

// shardedmap: T goroutines run a mix of get / put / delete on one concurrent
// map; the twin of workloads/shardedmap.c (seed 001's Cache over sync.Map
// and its ShardedMap with one RWMutex per shard). --set impl=N:
//
//	0 locked:     one map[string]uint64 under one sync.RWMutex;
//	1 sharded:    --set shards=N maps, each under its own sync.RWMutex, the
//	              shard chosen by FNV-1a over the key, unsigned, modulo N;
//	2 readmostly: a sync.Map (what the C's lock-free-read index imitates).
//
// The C's maps are its own open-addressing tables keyed by the key's id (C
// has no map); the twin uses Go's map keyed by the key string, as seed 001
// does. Keys are "user:%010u" of ids 0..keys-1; each op is a read with
// probability read_pct %, else a write of a key this goroutine owns (id % T
// == its index), a delete with probability del_pct % of writes, else a put
// of (id << 40 | its op number); each goroutine's ops are the same pure
// function of (--seed, thread, op number) as in C, so the final state is
// the C's and is checked against a single-threaded replay of the logs.
//
// One op: one get, put or delete. Latency: that call (sampled).
//
// Variant seed (impl=1): seed 001's getShard, `h = 31*h + int(c)` over the
// key in a Go int (wrapping), then m.shards[h%m.numShards]: for about half
// the keys h%N is negative and Go panics, index out of range. C reads memory
// before its shard array (a guard of real shards there) and counts; the Go
// twin counts the negative index and then indexes as the seed does: the
// goroutine panics, the twin recovers the panic (so that the cpbench-go
// process survives to report it), the goroutine ends there, and the run
// fails naming the negative indexes and Go's panic.
//
// Invariants (as the C original): integrity (a value read is its key's),
// monotonic reads, read your writes, the final sweep equals the replay
// (values and number of entries), sharded: every shard index in range,
// count-mode total, every goroutine ended.

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
)

const (
	smLocked = iota
	smSharded
	smReadMostly
)

const (
	smVerBits  = 40
	smMaxKeys  = 1 << 22
	smMaxShard = 256
)

type smShard struct {
	sync.RWMutex
	data map[string]uint64
	_    [32]byte // 64 bytes: a shard per cache line, as the C's aligned shards
}

type smMap struct {
	impl     int
	seed     bool
	shards   []*smShard
	rm       sync.Map      // readmostly
	key      []string      // the key strings, by id
	keyIface []interface{} // the same, boxed once (sync.Map's keys are interface{})
	negIndex uint64        // atomic
}

// shardIndex: FNV-1a over the key, unsigned, modulo N; seed: seed 001's
// signed hash, whose % keeps the sign.
func (m *smMap) shardIndex(id uint32) int {
	k := m.key[id]
	if !m.seed {
		h := uint64(0xcbf29ce484222325)
		for i := 0; i < len(k); i++ {
			h = (h ^ uint64(k[i])) * 0x100000001b3
		}
		return int(h % uint64(len(m.shards)))
	}
	h := 0
	for _, c := range k {
		h = 31*h + int(c)
	}
	return h % len(m.shards)
}

func (m *smMap) shardOf(id uint32) *smShard {
	if m.impl == smLocked {
		return m.shards[0]
	}
	i := m.shardIndex(id)
	if i < 0 || i >= len(m.shards) {
		atomic.AddUint64(&m.negIndex, 1)
	}
	return m.shards[i] // the seed's access, as it is (Go panics for i < 0)
}

func (m *smMap) get(id uint32) (uint64, bool) {
	if m.impl == smReadMostly {
		v, ok := m.rm.Load(m.keyIface[id])
		if !ok {
			return 0, false
		}
		return v.(uint64), true
	}
	sh := m.shardOf(id)
	sh.RLock()
	v, ok := sh.data[m.key[id]]
	sh.RUnlock()
	return v, ok
}

func (m *smMap) put(id uint32, v uint64) {
	if m.impl == smReadMostly {
		m.rm.Store(m.keyIface[id], v)
		return
	}
	sh := m.shardOf(id)
	sh.Lock()
	sh.data[m.key[id]] = v
	sh.Unlock()
}

func (m *smMap) del(id uint32) {
	if m.impl == smReadMostly {
		m.rm.Delete(m.keyIface[id])
		return
	}
	sh := m.shardOf(id)
	sh.Lock()
	delete(sh.data, m.key[id])
	sh.Unlock()
}

// the operation log (the C's struct gen, bit for bit)
type smGen struct {
	x               uint64
	t, T            int
	keys, owned     uint32
	readPct, delPct int
}

const (
	smGet = iota
	smPut
	smDel
)

func smGenInit(seed uint64, t, T int, keys uint32, readPct, delPct int) smGen {
	g := smGen{x: Mix(seed^Mix(uint64(t)+1)) | 1, t: t, T: T, keys: keys, readPct: readPct, delPct: delPct}
	if uint32(t) < keys {
		g.owned = (keys - uint32(t) + uint32(T) - 1) / uint32(T)
	}
	return g
}

func (g *smGen) next() uint64 {
	g.x ^= g.x << 13
	g.x ^= g.x >> 7
	g.x ^= g.x << 17
	return g.x
}

func (g *smGen) op() (int, uint32) {
	r := g.next()
	if int(r%100) < g.readPct || g.owned == 0 {
		return smGet, uint32((r >> 8) % uint64(g.keys))
	}
	id := uint32(g.t) + uint32(g.T)*uint32((r>>8)%uint64(g.owned))
	if int((r>>40)%100) < g.delPct {
		return smDel, id
	}
	return smPut, id
}

type smState struct {
	r           *Run
	m           *smMap
	T           int
	keys        uint32
	perThread   uint64
	extra       uint64
	ops         []uint64 // per goroutine, for the replay
	readPct     int
	delPct      int
	errs        Errs
	reads, hits uint64
	panicked    uint64 // atomic: goroutines ended by a panic (seed)
	panicMu     sync.Mutex
	panicMsg    string
}

func (s *smState) worker(t *Thread, id int) {
	r := s.r
	n := s.perThread
	if uint64(id) < s.extra {
		n++
	}
	sample := r.Cfg.LatSample
	const vmask = uint64(1)<<smVerBits - 1
	untilSample := int64(0)
	g := smGenInit(r.Cfg.Seed, id, s.T, s.keys, s.readPct, s.delPct)
	seen := make([]uint64, s.keys) // newest version read, per key
	owned := g.owned
	if owned == 0 {
		owned = 1
	}
	mine := make([]uint64, owned) // my last write, 0: none
	var i, reads, hits uint64
	defer func() {
		// the seed's negative shard index: Go panics (index out of range);
		// this goroutine ends here, the process lives on to report it
		if s.m.seed {
			if e := recover(); e != nil {
				atomic.AddUint64(&s.panicked, 1)
				s.panicMu.Lock()
				if s.panicMsg == "" {
					s.panicMsg = fmt.Sprint(e)
				}
				s.panicMu.Unlock()
			}
		}
		s.ops[id] = i
		atomic.AddUint64(&s.reads, reads)
		atomic.AddUint64(&s.hits, hits)
		t.Ops = i
		t.Phase("done")
	}()
	t.Phase("ops")
	for ; r.More(i, n); i++ {
		op, key := g.op()
		var t0 uint64
		if sample > 0 {
			if untilSample--; untilSample <= 0 {
				untilSample = sample
				t0 = Now()
			}
		}
		switch op {
		case smGet:
			v, found := s.m.get(key)
			if t0 != 0 {
				t.Hist.Record(Since(t0))
			}
			reads++
			if found {
				hits++
				if v>>smVerBits != uint64(key) {
					s.errs.note("a value read belongs to another key (key, value)", uint64(key), v)
				} else if v&vmask < seen[key] {
					s.errs.note("read went backwards (key, version)", uint64(key), v&vmask)
				} else {
					seen[key] = v & vmask
				}
			}
			if key%uint32(s.T) == uint32(id) {
				want := mine[key/uint32(s.T)]
				if !found {
					v = 0
				}
				if v != want {
					s.errs.note("read of my own key is not my last write (key, value)", uint64(key), v)
				}
			}
		case smPut:
			v := uint64(key)<<smVerBits | (i+1)&vmask
			s.m.put(key, v)
			if t0 != 0 {
				t.Hist.Record(Since(t0))
			}
			mine[key/uint32(s.T)] = v
		default:
			s.m.del(key)
			if t0 != 0 {
				t.Hist.Record(Since(t0))
			}
			mine[key/uint32(s.T)] = 0
		}
	}
}

func shardedmapRun(r *Run) error {
	c := r.Cfg
	impl, keys, nshards := c.Param("impl"), c.Param("keys"), c.Param("shards")
	switch {
	case impl < 0 || impl > 2:
		return errors.New("--set impl must be 0 (locked), 1 (sharded) or 2 (readmostly)")
	case keys < 1 || keys > smMaxKeys:
		return errors.New("--set keys must be 1..4194304")
	case nshards < 1 || nshards > smMaxShard:
		return errors.New("--set shards must be 1..256")
	}
	s := &smState{
		r:       r,
		T:       int(c.Threads),
		keys:    uint32(keys),
		readPct: int(c.Param("read_pct")),
		delPct:  int(c.Param("del_pct")),
	}
	s.perThread = uint64(c.Items) / uint64(s.T)
	s.extra = uint64(c.Items) % uint64(s.T)
	s.ops = make([]uint64, s.T)
	m := &smMap{impl: int(impl), seed: c.Variant == "seed"}
	s.m = m
	m.key = make([]string, keys)
	for i := range m.key {
		m.key[i] = fmt.Sprintf("user:%010d", i)
	}
	if m.impl == smReadMostly {
		m.keyIface = make([]interface{}, keys)
		for i, k := range m.key {
			m.keyIface[i] = k
		}
	} else {
		n := 1
		if m.impl == smSharded {
			n = int(nshards)
		}
		m.shards = make([]*smShard, n)
		for i := range m.shards {
			m.shards[i] = &smShard{data: make(map[string]uint64, int(keys)/n+1)}
		}
	}
	for i := 0; i < s.T; i++ {
		i := i
		r.Spawn("worker", func(t *Thread) { s.worker(t, i) })
	}
	r.Start()
	r.WaitDuration()
	r.Join()

	// the single-threaded replay of every goroutine's log
	const vmask = uint64(1)<<smVerBits - 1
	replay := make([]uint64, keys)
	var total, wantEntries uint64
	for t := 0; t < s.T; t++ {
		g := smGenInit(c.Seed, t, s.T, s.keys, s.readPct, s.delPct)
		for i := uint64(0); i < s.ops[t]; i++ {
			op, id := g.op()
			if op == smPut {
				replay[id] = uint64(id)<<smVerBits | (i+1)&vmask
			} else if op == smDel {
				replay[id] = 0
			}
		}
		total += s.ops[t]
	}
	var mismatch, first, gotFirst, wantFirst uint64
	sweepPanic := smSweep(m, replay, &mismatch, &first, &gotFirst, &wantFirst, &wantEntries)
	var entries uint64
	if m.impl == smReadMostly {
		m.rm.Range(func(_, _ interface{}) bool { entries++; return true })
	} else {
		for _, sh := range m.shards {
			entries += uint64(len(sh.data))
		}
	}

	if s.errs.n > 0 {
		r.Fail("%s: %d, %d (%d errors)", s.errs.first, s.errs.a, s.errs.b, s.errs.n)
	}
	if m.negIndex > 0 || s.panicked > 0 {
		msg := s.panicMsg
		if msg == "" {
			msg = sweepPanic
		}
		r.Fail("shard index out of range in %d accesses; %d keys stored outside the shard array "+
			"(a negative index from the signed hash; Go panics: %s; %d goroutines ended by it)",
			m.negIndex, 0, msg, s.panicked)
	}
	if mismatch > 0 {
		r.Fail("final sweep differs from the replay of the operation log at %d keys (first: key %d holds "+
			"%016x, replay %016x)", mismatch, first, gotFirst, wantFirst)
	}
	if entries != wantEntries {
		r.Fail("the map holds %d entries, the replay %d", entries, wantEntries)
	}
	if c.Duration <= 0 && total != uint64(c.Items) {
		r.Fail("ran %d ops, asked for %d", total, c.Items)
	}
	hitPct := 0.0
	if s.reads > 0 {
		hitPct = 100 * float64(s.hits) / float64(s.reads)
	}
	r.Metric("hit_pct", hitPct)
	r.Metric("entries", float64(wantEntries))
	r.Ops = total
	return nil
}

// smSweep: the final sweep against the replay. In the seed variant a key
// whose shard index is negative panics here too (as every access to it
// does): it counts as a mismatch only if the replay holds a value for it,
// and the panic's message is returned.
func smSweep(m *smMap, replay []uint64, mismatch, first, gotFirst, wantFirst, wantEntries *uint64) (msg string) {
	for id := range replay {
		if replay[id] != 0 {
			*wantEntries++
		}
		v, p := smGetRecover(m, uint32(id))
		if p != "" && msg == "" {
			msg = p
		}
		if v != replay[id] {
			if *mismatch == 0 {
				*first, *gotFirst, *wantFirst = uint64(id), v, replay[id]
			}
			*mismatch++
		}
	}
	return msg
}

func smGetRecover(m *smMap, id uint32) (v uint64, p string) {
	defer func() {
		if e := recover(); e != nil {
			v, p = 0, fmt.Sprint(e)
		}
	}()
	v, _ = m.get(id)
	return v, ""
}

func init() {
	register(&Pattern{
		Name:     "shardedmap",
		Params:   []string{"impl", "read_pct", "del_pct", "keys", "shards"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"hit_pct", "entries"},
		Run:      shardedmapRun,
	})
}
