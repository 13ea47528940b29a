package main

// pubsub: P publishers publish messages to topics of one broker, S
// subscribers each hold a subscription (a buffered channel, --capacity) to
// one topic with a delivery policy; the twin of workloads/pubsub.c, the
// Pub/Sub of seed 002 (PubSub) and seed 003 (Broker with Subscribe /
// Publish / Unsubscribe):
//   block:       the publisher waits until the subscriber has room, or is
//                leaving (`select { case ch <- m: case <-gone: }`);
//   drop_newest: a full subscriber loses the new message (`select { case
//                ch <- m: default: }`, seed 003's Publish);
//   drop_oldest: a full subscriber loses its oldest buffered message to make
//                room (after a few tries, the new one).
//
// The broker: per topic, a sync.RWMutex over the list of subscriptions.
// Publish holds the topic's read lock while it delivers to each subscription
// by its policy. Unsubscribe first closes the subscription's `gone` channel
// (a publisher blocked on it gives up that delivery), then takes the write
// lock, unlinks it, and closes its channel after: once unlinked no publisher
// can reach it, so nothing is ever sent to a closed subscriber. Shutdown (the
// last publisher) closes the topics and every subscription's channel;
// subscribers drain what they hold and exit.
//
// Message i of publisher p goes to topic (p + i) % topics; subscriber s
// takes topic s % topics and policy s % 3 (--set policy=3, mixed) or the one
// given. With --set unsub_every=N the odd-numbered subscribers unsubscribe
// after every N messages and subscribe again (churn under load); a block
// subscriber leaves only once a delivery to it is outstanding. --work-ns:
// each subscriber works that long per message.
//
// One op: one message published (to every subscriber of its topic).
// Latency: the Publish call, 1 in LatSample messages.
//
// Invariants, as the C original:
//   - per subscription: offered == delivered + dropped (newest, oldest) +
//     cut + sent to a closed channel, and the sums of Mix(tag) agree;
//   - nothing is ever sent to a closed subscriber: in Go such a send panics
//     (send on closed channel); each send is made in a function that
//     recovers that panic, and counts it, so that the run fails with the
//     count instead of the program dying;
//   - a subscription that lived the whole run was offered every message of
//     its topic (counted by the publishers, outside the broker); with block
//     it received them all;
//   - per-publisher order: each subscription sees each publisher's messages
//     in order (gaps only where messages were dropped);
//   - every channel closed once (closing it twice panics too: recovered and
//     counted), and every goroutine ended.
//
// Metrics: delivered, dropped_newest, dropped_oldest, cut, lag_p99_ns
// (publish start -> subscriber receive, sampled; 2 significant digits as the
// C's histogram), goroutines_peak (seed: deliveries pending at once),
// closed_sends.
//
// Variant `seed`: seed 002's Publish, a goroutine per message and
// subscriber, here literally `go func(c chan<- psMsg) { c <- m }(ch)`, with
// seed 003's Unsubscribe (unlink and close under the write lock). Each makes
// a blocking send (the policy is ignored, as in the seed). Publish returns
// before delivery, so order is not kept, goroutines pile up behind a slow
// subscriber, and an Unsubscribe closes a channel that pending goroutines
// still send to: they panic (recovered, counted), which fails the run. At
// shutdown the deliveries still pending fail the same way. The C runs these
// "goroutines" as tasks on --set goroutines=G threads; Go has real ones, run
// by its scheduler on GOMAXPROCS Ps, so that parameter has no meaning here
// and is not declared (a non-default value is refused for --impl=go).

import (
	"math"
	"math/bits"
	"runtime"
	"sync"
	"sync/atomic"
)

const (
	psBlock = iota
	psDropNewest
	psDropOldest
	psMixed
)

const (
	psTagShift      = 40
	psSeedMaxPend   = 1 << 20
	psSeedMaxSubs   = 1000
	psDropOldTries  = 4
	psClosedSendMsg = "send on closed channel"
)

type psMsg struct{ tag, ts uint64 }

// psSub is a subscription. The counters a publisher writes are atomic; the
// subscriber's own (delivered, next) are its goroutine's alone.
type psSub struct {
	ch                                       chan psMsg
	gone                                     chan struct{} // closed when Unsubscribe starts; nil in the seed
	policy, topic                            int
	steady                                   bool
	offered, offeredSum, dropNew, dropNewSum uint64
	dropOld, dropOldSum, cut, cutSum         uint64
	closedSends, closedSum, closes           uint64
	delivered, deliveredSum                  uint64
	next                                     []uint64 // per publisher: the lowest seq it may still deliver
}

type psTopic struct {
	mu                      sync.RWMutex
	subs                    []*psSub // under mu
	closed                  bool
	published, publishedSum uint64 // counted by the publishers
}

type psState struct {
	r                    *Run
	pubs, ntopics        int
	seed                 bool
	capacity             int
	unsubEvery           uint64
	topics               []psTopic
	live                 int32
	pubsDone             int32
	acc                  sync.Mutex // the totals below, and kept
	kept                 []*psSub
	delivered, dropNew   uint64
	dropOld, cut, closed uint64
	// seed: the per-message goroutines
	deliveries     sync.WaitGroup
	pending, peak  int64
	pendingAtClose int64
	lag            []*Hist // per subscriber
	errs           Errs
}

// psIsClosedPanic: the panic value of a send on (or a close of) a closed channel.
func psIsClosedPanic(e interface{}, msg string) bool {
	err, ok := e.(runtime.Error)
	return ok && err.Error() == msg
}

func (s *psState) newSub(topic, policy int) *psSub {
	u := &psSub{topic: topic, policy: policy, ch: make(chan psMsg, s.capacity), next: make([]uint64, s.pubs)}
	if !s.seed {
		u.gone = make(chan struct{})
	}
	return u
}

// subscribe links u into its topic; false once the broker has closed.
func (s *psState) subscribe(u *psSub) bool {
	t := &s.topics[u.topic]
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return false
	}
	t.subs = append(t.subs, u)
	return true
}

func psUnlink(t *psTopic, u *psSub) bool {
	for i, v := range t.subs {
		if v == u {
			last := len(t.subs) - 1
			t.subs[i] = t.subs[last]
			t.subs[last] = nil
			t.subs = t.subs[:last]
			return true
		}
	}
	return false
}

func (s *psState) closeSub(u *psSub) {
	atomic.AddUint64(&u.closes, 1) // before the close, which the subscriber observes
	defer func() {
		if e := recover(); e != nil {
			if !psIsClosedPanic(e, "close of closed channel") {
				panic(e)
			}
			s.errs.note("a subscription's channel closed twice (topic, 0)", uint64(u.topic), 0)
		}
	}()
	close(u.ch)
}

func (s *psState) unsubscribe(u *psSub) {
	t := &s.topics[u.topic]
	if s.seed {
		// seed 003: unlink and close under the lock; the goroutines that
		// still hold the channel are not the broker's concern
		t.mu.Lock()
		if psUnlink(t, u) {
			s.closeSub(u)
		}
		t.mu.Unlock()
		return
	}
	close(u.gone) // a publisher blocked on u gives up
	t.mu.Lock()   // ...and every publisher inside Publish has left u
	linked := psUnlink(t, u)
	t.mu.Unlock()
	if linked {
		s.closeSub(u) // unreachable now: no send can follow
	}
}

// psClosedSend accounts a message that met a closed channel.
func psClosedSend(u *psSub, h uint64) {
	atomic.AddUint64(&u.closedSends, 1)
	atomic.AddUint64(&u.closedSum, h)
}

// deliver offers m to u by its policy. A send on a closed channel panics in
// Go: recovered here and counted (it never happens unless the broker is
// broken).
func (s *psState) deliver(u *psSub, m psMsg) {
	h := Mix(m.tag)
	atomic.AddUint64(&u.offered, 1)
	atomic.AddUint64(&u.offeredSum, h)
	defer func() {
		if e := recover(); e != nil {
			if !psIsClosedPanic(e, psClosedSendMsg) {
				panic(e)
			}
			psClosedSend(u, h)
		}
	}()
	switch u.policy {
	case psBlock:
		select {
		case u.ch <- m:
		case <-u.gone:
			atomic.AddUint64(&u.cut, 1)
			atomic.AddUint64(&u.cutSum, h)
		}
	case psDropNewest:
		select {
		case u.ch <- m:
		default:
			atomic.AddUint64(&u.dropNew, 1)
			atomic.AddUint64(&u.dropNewSum, h)
		}
	default: // drop_oldest
		for tries := 0; tries < psDropOldTries; tries++ {
			select {
			case u.ch <- m:
				return
			default:
			}
			select {
			case old, ok := <-u.ch:
				if ok {
					atomic.AddUint64(&u.dropOld, 1)
					atomic.AddUint64(&u.dropOldSum, Mix(old.tag))
				}
			default:
			}
		}
		// no room made (capacity 0, or others refilled it)
		atomic.AddUint64(&u.dropNew, 1)
		atomic.AddUint64(&u.dropNewSum, h)
	}
}

// spawnDelivery is the seed's `go func(c chan<- interface{}) { c <- msg }(ch)`;
// false on a pile-up (the message is then accounted as lost).
func (s *psState) spawnDelivery(u *psSub, m psMsg) bool {
	h := Mix(m.tag)
	atomic.AddUint64(&u.offered, 1)
	atomic.AddUint64(&u.offeredSum, h)
	n := atomic.AddInt64(&s.pending, 1)
	if n > psSeedMaxPend {
		atomic.AddInt64(&s.pending, -1)
		psClosedSend(u, h) // never delivered: accounted as lost
		return false
	}
	for p := atomic.LoadInt64(&s.peak); n > p; p = atomic.LoadInt64(&s.peak) {
		if atomic.CompareAndSwapInt64(&s.peak, p, n) {
			break
		}
	}
	s.deliveries.Add(1)
	go func(c chan<- psMsg) {
		defer s.deliveries.Done()
		defer atomic.AddInt64(&s.pending, -1)
		defer func() {
			if e := recover(); e != nil { // panic: send on closed channel
				if !psIsClosedPanic(e, psClosedSendMsg) {
					panic(e)
				}
				psClosedSend(u, h)
			}
		}()
		c <- m
	}(u.ch)
	return true
}

func (s *psState) publish(topic int, m psMsg) bool {
	t := &s.topics[topic]
	ok := true
	t.mu.RLock()
	for _, u := range t.subs {
		if s.seed {
			ok = s.spawnDelivery(u, m) && ok
		} else {
			s.deliver(u, m)
		}
	}
	t.mu.RUnlock()
	return ok
}

// brokerClose: no more messages; every subscription's channel is closed.
func (s *psState) brokerClose() {
	if s.seed {
		atomic.StoreInt64(&s.pendingAtClose, atomic.LoadInt64(&s.pending))
	}
	for i := range s.topics {
		t := &s.topics[i]
		t.mu.Lock()
		t.closed = true
		for j, u := range t.subs {
			s.closeSub(u)
			t.subs[j] = nil
		}
		t.subs = t.subs[:0]
		t.mu.Unlock()
	}
}

// settle: a subscription is over (closed and drained, and in the default
// variant no publisher can reach it): check its books, add them to the totals.
func (s *psState) settle(u *psSub) {
	off, dn, dold := atomic.LoadUint64(&u.offered), atomic.LoadUint64(&u.dropNew), atomic.LoadUint64(&u.dropOld)
	cut, cl := atomic.LoadUint64(&u.cut), atomic.LoadUint64(&u.closedSends)
	sum := u.deliveredSum + atomic.LoadUint64(&u.dropNewSum) + atomic.LoadUint64(&u.dropOldSum) +
		atomic.LoadUint64(&u.cutSum) + atomic.LoadUint64(&u.closedSum)
	if acc := u.delivered + dn + dold + cut + cl; off != acc {
		s.errs.note("subscription books: offered != delivered + dropped + cut + closed (offered, accounted)", off, acc)
	} else if sum != atomic.LoadUint64(&u.offeredSum) {
		s.errs.note("subscription checksum: offered != delivered + dropped + cut + closed (topic, offered)",
			uint64(u.topic), off)
	}
	if n := atomic.LoadUint64(&u.closes); n != 1 {
		s.errs.note("a subscription's channel was not closed exactly once (closes, topic)", n, uint64(u.topic))
	}
	if u.policy == psBlock && (dn > 0 || dold > 0) {
		s.errs.note("a block subscription lost messages (dropped, topic)", dn+dold, uint64(u.topic))
	}
	if u.steady {
		t := &s.topics[u.topic]
		pub := atomic.LoadUint64(&t.published)
		if off != pub {
			s.errs.note("a subscription of the whole run was offered fewer messages than its topic got (offered, "+
				"published)", off, pub)
		} else if atomic.LoadUint64(&u.offeredSum) != atomic.LoadUint64(&t.publishedSum) {
			s.errs.note("a subscription of the whole run: checksum of offered != published (topic, published)",
				uint64(u.topic), pub)
		}
		if cut > 0 {
			s.errs.note("a subscription that never left had deliveries cut (cut, topic)", cut, uint64(u.topic))
		}
	}
	s.acc.Lock()
	s.delivered += u.delivered
	s.dropNew += dn
	s.dropOld += dold
	s.cut += cut
	s.closed += cl
	s.acc.Unlock()
}

// outstanding deliveries to u: offered, not yet received nor buffered
func psOutstanding(u *psSub) uint64 {
	off, have := atomic.LoadUint64(&u.offered), u.delivered+uint64(len(u.ch))
	if off > have {
		return off - have
	}
	return 0
}

func (s *psState) receive(id int, u *psSub, m psMsg) {
	pid, seq := m.tag>>psTagShift, m.tag&(1<<psTagShift-1)
	if m.ts != 0 {
		s.lag[id].Record(Since(m.ts))
	}
	switch {
	case pid >= uint64(s.pubs):
		s.errs.note("message from an unknown publisher (publisher, seq)", pid, seq)
	case seq < u.next[pid]:
		s.errs.note("per-publisher order broken (seq, expected at least)", seq, u.next[pid])
	default:
		u.next[pid] = seq + 1
	}
	u.delivered++
	u.deliveredSum += Mix(m.tag)
}

// psPercentile2 is cp_hist_percentile of a 2-significant-digit cp_hist (the
// C's lag histograms), from the 3-digit Hist: the rank-th value's 3-digit
// slot lies inside one 2-digit slot (256 sub-buckets), whose highest
// equivalent value is the answer, at most the max.
func psPercentile2(h *Hist, pct float64) uint64 {
	if h.total == 0 {
		return 0
	}
	if !(pct < 100) {
		return h.max
	}
	if pct < 0 {
		pct = 0
	}
	rank := uint64(math.Ceil(pct / 100 * float64(h.total) * (1 - 4*2.220446049250313e-16)))
	if rank < 1 {
		rank = 1
	}
	if rank > h.total {
		rank = h.total
	}
	var cum uint64
	for i, n := range h.counts {
		if cum += n; cum >= rank {
			v := slotValue(i)
			b := uint(64 - bits.LeadingZeros64(v|255) - 8) // the 2-digit bucket of v: sub-bucket width 2^b
			hi := (v>>b)<<b + (1 << b) - 1
			if hi < h.max {
				return hi
			}
			return h.max
		}
	}
	return h.max
}

func psRun(r *Run) error {
	c := r.Cfg
	s := &psState{
		r:          r,
		pubs:       int(c.Producers),
		ntopics:    int(c.Param("topics")),
		seed:       c.Variant == "seed",
		capacity:   int(c.Capacity),
		unsubEvery: uint64(c.Param("unsub_every")),
	}
	policy := int(c.Param("policy"))
	nsubs := int(c.Consumers)
	perPub, extra := uint64(c.Items)/uint64(s.pubs), uint64(c.Items)%uint64(s.pubs)
	s.live = int32(s.pubs)
	s.topics = make([]psTopic, s.ntopics)
	s.lag = make([]*Hist, nsubs)
	first := make([]*psSub, nsubs)
	for i := 0; i < nsubs; i++ {
		pol := policy
		if policy == psMixed {
			pol = i % 3
		}
		first[i] = s.newSub(i%s.ntopics, pol)
		first[i].steady = !(s.unsubEvery != 0 && i&1 == 1)
		s.lag[i] = &Hist{}
		s.subscribe(first[i])
	}
	for i := 0; i < nsubs; i++ {
		id, u := i, first[i]
		r.Spawn("subscriber", func(t *Thread) { s.subscriber(t, id, u) })
	}
	for i := 0; i < s.pubs; i++ {
		id := uint64(i)
		n := perPub
		if id < extra {
			n++
		}
		r.Spawn("publisher", func(t *Thread) { s.publisher(t, id, n) })
	}
	r.Start()
	r.WaitDuration()
	r.Join()
	s.deliveries.Wait() // seed: every delivery goroutine has finished (the broker closed every channel)

	for _, u := range s.kept { // seed: settled once no goroutine holds them
		s.settle(u)
	}
	var published uint64
	for i := range s.topics {
		published += s.topics[i].published
	}
	if s.closed > 0 && s.seed {
		r.Fail("%d messages sent to a closed subscriber (Go: panic: send on closed channel); %d deliveries were "+
			"still pending at shutdown (goroutines, at most %d at once)", s.closed, s.pendingAtClose, s.peak)
	} else if s.closed > 0 {
		r.Fail("%d messages sent to a closed subscriber (Go: panic: send on closed channel)", s.closed)
	}
	if s.errs.n > 0 {
		r.Fail("%s: %d, %d (%d errors)", s.errs.first, s.errs.a, s.errs.b, s.errs.n)
	}
	if c.Duration <= 0 && published != uint64(c.Items) && s.errs.n == 0 {
		r.Fail("published %d messages, asked for %d", published, c.Items)
	}
	var lag Hist
	for _, h := range s.lag {
		lag.merge(h)
	}
	if lag.Count() > 0 {
		r.Metric("lag_p99_ns", float64(psPercentile2(&lag, 99)))
	}
	r.Metric("delivered", float64(s.delivered))
	r.Metric("dropped_newest", float64(s.dropNew))
	r.Metric("dropped_oldest", float64(s.dropOld))
	r.Metric("cut", float64(s.cut))
	r.Metric("goroutines_peak", float64(s.peak))
	r.Metric("closed_sends", float64(s.closed))
	r.Ops = published
	return nil
}

func (s *psState) publisher(t *Thread, id, n uint64) {
	r, c := s.r, s.r.Cfg
	untilSample := int64(0)
	var i uint64
	t.Phase("publish")
	for ; r.More(i, n); i++ {
		topic := int((id + i) % uint64(s.ntopics))
		m := psMsg{tag: id<<psTagShift | i}
		var t0 uint64
		if c.LatSample > 0 {
			if untilSample--; untilSample <= 0 {
				untilSample = c.LatSample
				t0 = Now()
				m.ts = t0
			}
		}
		ok := s.publish(topic, m)
		if t0 != 0 {
			t.Hist.Record(Since(t0))
		}
		tp := &s.topics[topic]
		atomic.AddUint64(&tp.published, 1)
		atomic.AddUint64(&tp.publishedSum, Mix(m.tag))
		if !ok {
			s.errs.note("goroutine pile-up: more than this many deliveries pending (limit, 0)", psSeedMaxPend, 0)
			i++
			break
		}
	}
	t.Ops = i
	t.Phase("close the broker")
	if atomic.AddInt32(&s.live, -1) == 0 {
		atomic.StoreInt32(&s.pubsDone, 1)
		s.brokerClose()
	}
	t.Phase("done")
}

func (s *psState) subscriber(t *Thread, id int, u *psSub) {
	work := s.r.Cfg.WorkNs
	churn := s.unsubEvery != 0 && id&1 == 1
	var n, resubs uint64
	for u != nil {
		var got uint64
		t.Phase("recv")
		for m := range u.ch {
			s.receive(id, u, m)
			n++
			if work > 0 {
				Work(work)
			}
			if !churn {
				continue
			}
			if got++; got < s.unsubEvery || (s.seed && resubs >= psSeedMaxSubs) {
				continue
			}
			// leave under load: a block subscription waits until a delivery
			// to it is outstanding, so that the leave races a send
			t.Phase("wait for an outstanding delivery")
			for u.policy == psBlock && psOutstanding(u) == 0 && atomic.LoadInt32(&s.pubsDone) == 0 {
				SleepNs(20000)
			}
			t.Phase("unsubscribe")
			s.unsubscribe(u)
			break
		}
		t.Phase("drain")
		for m := range u.ch { // what it still holds
			s.receive(id, u, m)
			n++
		}
		var next *psSub
		if churn && atomic.LoadInt32(&s.pubsDone) == 0 {
			if next = s.newSub(u.topic, u.policy); !s.subscribe(next) {
				next = nil
			}
			resubs++
		}
		if s.seed { // goroutines may still hold u: settle it at the end
			s.acc.Lock()
			s.kept = append(s.kept, u)
			s.acc.Unlock()
		} else {
			s.settle(u)
		}
		u = next
	}
	t.Ops = n
	t.Phase("done")
}

func init() {
	register(&Pattern{
		Name:     "pubsub",
		Params:   []string{"topics", "policy", "unsub_every"},
		Variants: []string{"default", "seed"},
		Metrics: []string{"delivered", "dropped_newest", "dropped_oldest", "cut", "lag_p99_ns", "goroutines_peak",
			"closed_sends"},
		Run: psRun,
	})
}
