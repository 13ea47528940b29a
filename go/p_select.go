package main

// select: K producers, each on its own channel, and one consumer selecting
// over all K channels plus ctx.Done(), the twin of workloads/select.c: Go's
// `select { case v := <-ch[i]: ... case <-ctx.Done(): return }`, the fan-in
// loop of the or-done / merge patterns.
//
// One op: one item received by the consumer's select. Latency: an item's
// time from the start of its send to the return of the select that received
// it (1 in LatSample items; needs --payload >= 16). --producers = K,
// --capacity per channel, --items in total, --payload the item's size (the
// C's: at least 8). The last producer to finish cancels the context; the
// consumer then drains the channels with a non-blocking select (default).
// Item: 8-byte tag (producer << 40 | seq), then the send timestamp when the
// payload has room.
//
// K is a run's knob, and a Go select statement's cases are static: the
// select is spelled out for K = 1..8 (selectRecv, selectTry), beyond that
// reflect.Select does the same over a case slice (slower: it allocates).
//
// Invariants (as the C original): count and checksum of Mix(tag); an item
// arrives on its producer's channel; per-producer FIFO; every channel that
// had items was served at least once (the failure gives the largest
// deviation of the channels' shares from 1/K); every goroutine ended.

import (
	"context"
	"encoding/binary"
	"reflect"
	"sync/atomic"
)

const (
	selectTagShift = 40
	selectStatic   = 8 // K up to this: a select statement; beyond, reflect.Select
)

// selectSet is the consumer's case list: the K channels and the done
// channel, and for K > selectStatic the same as reflect.SelectCase slices.
type selectSet[T Payload] struct {
	ch        []chan T
	done      <-chan struct{}
	rc, rcTry []reflect.SelectCase
}

func newSelectSet[T Payload](ch []chan T, done <-chan struct{}) *selectSet[T] {
	s := &selectSet[T]{ch: ch, done: done}
	if len(ch) > selectStatic {
		for _, c := range ch {
			rc := reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)}
			s.rc = append(s.rc, rc)
			s.rcTry = append(s.rcTry, rc)
		}
		s.rc = append(s.rc, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(done)})
		s.rcTry = append(s.rcTry, reflect.SelectCase{Dir: reflect.SelectDefault})
	}
	return s
}

func selectRunT[T Payload](r *Run) error {
	c := r.Cfg
	k := int(c.Producers)
	var zero T
	payload := len(zero)
	per, extra := uint64(c.Items)/uint64(k), uint64(c.Items)%uint64(k)
	ch := make([]chan T, k)
	for i := range ch {
		ch[i] = make(chan T, c.Capacity)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	live := int32(k)
	var sent, sentSum uint64    // atomic
	sentOn := make([]uint64, k) // per channel, written by its producer
	gotOn := make([]uint64, k)  // per channel, written by the consumer
	var recv, recvSum uint64    // the consumer's, read after Join
	var errs Errs

	r.Spawn("consumer", func(t *Thread) {
		sel := newSelectSet(ch, ctx.Done())
		last := make([]int64, k)
		for i := range last {
			last[i] = -1
		}
		var n, sum uint64
		t.Phase("select")
		for draining := false; ; {
			var i int
			var it T
			if draining {
				// after the done case fired: drain without it, without blocking
				if i, it = selectTry(sel); i < 0 {
					break
				}
			} else if i, it = selectRecv(sel); i == k {
				draining = true
				t.Phase("drain")
				continue
			}
			b := bytesOf(&it)
			tag := binary.LittleEndian.Uint64(b)
			if payload >= 16 {
				if ts := binary.LittleEndian.Uint64(b[8:]); ts != 0 {
					t.Hist.Record(Since(ts))
				}
			}
			pid, seq := tag>>selectTagShift, int64(tag&(1<<selectTagShift-1))
			if pid != uint64(i) {
				errs.note("item of producer on another channel (producer, channel)", pid, uint64(i))
			} else {
				if seq <= last[pid] {
					errs.note("per-producer FIFO broken (seq, after)", uint64(seq), uint64(last[pid]))
				}
				last[pid] = seq
			}
			gotOn[i]++
			sum += Mix(tag)
			n++
			if c.WorkNs > 0 {
				Work(c.WorkNs)
			}
		}
		recv, recvSum = n, sum
		t.Ops = n
		t.Phase("done")
	})
	for i := 0; i < k; i++ {
		id := uint64(i)
		r.Spawn("producer", func(t *Thread) {
			n := per
			if id < extra {
				n++
			}
			out := ch[id]
			var it T
			b := bytesOf(&it)
			var seq, sum uint64
			untilSample := int64(0)
			t.Phase("send")
			for ; r.More(seq, n); seq++ {
				tag := id<<selectTagShift | seq
				binary.LittleEndian.PutUint64(b, tag)
				if payload >= 16 {
					var ts uint64
					if c.LatSample > 0 {
						if untilSample--; untilSample <= 0 {
							untilSample = c.LatSample
							ts = Now()
						}
					}
					binary.LittleEndian.PutUint64(b[8:], ts)
				}
				out <- it
				sum += Mix(tag)
			}
			sentOn[id] = seq
			atomic.AddUint64(&sent, seq)
			atomic.AddUint64(&sentSum, sum)
			t.Ops = seq
			t.Phase("cancel")
			if atomic.AddInt32(&live, -1) == 0 {
				cancel()
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
	// every channel that had items served; shares reported only on failure
	starved, maxdev := -1, 0.0
	for i := 0; i < k; i++ {
		if sentOn[i] != 0 && gotOn[i] == 0 && starved < 0 {
			starved = i
		}
		share := 0.0
		if recv > 0 {
			share = float64(gotOn[i]) / float64(recv)
		}
		dev := share - 1.0/float64(k)
		if dev < 0 {
			dev = -dev
		}
		if dev > maxdev {
			maxdev = dev
		}
	}
	if starved >= 0 {
		r.Fail("fairness: channel %d got 0 of %d receives while it had %d items "+
			"(max deviation of shares from 1/%d: %.1f%%)", starved, recv, sentOn[starved], k, 100*maxdev)
	}
	r.Ops = recv
	return nil
}

// selectRecv is `select { case v := <-ch[0]: ... case v := <-ch[K-1]: ...
// case <-done: }` for K channels: Go's select statement has a static case
// list, so it is spelled out for K = 1..selectStatic; more channels go
// through reflect.Select (sel.rc). Returns the index of the case taken
// (K: done).
func selectRecv[T Payload](sel *selectSet[T]) (int, T) {
	ch, done := sel.ch, sel.done
	var v T
	switch len(ch) {
	case 1:
		select {
		case v = <-ch[0]:
			return 0, v
		case <-done:
			return 1, v
		}
	case 2:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case <-done:
			return 2, v
		}
	case 3:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		case <-done:
			return 3, v
		}
	case 4:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		case v = <-ch[3]:
			return 3, v
		case <-done:
			return 4, v
		}
	case 5:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		case v = <-ch[3]:
			return 3, v
		case v = <-ch[4]:
			return 4, v
		case <-done:
			return 5, v
		}
	case 6:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		case v = <-ch[3]:
			return 3, v
		case v = <-ch[4]:
			return 4, v
		case v = <-ch[5]:
			return 5, v
		case <-done:
			return 6, v
		}
	case 7:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		case v = <-ch[3]:
			return 3, v
		case v = <-ch[4]:
			return 4, v
		case v = <-ch[5]:
			return 5, v
		case v = <-ch[6]:
			return 6, v
		case <-done:
			return 7, v
		}
	case 8:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		case v = <-ch[3]:
			return 3, v
		case v = <-ch[4]:
			return 4, v
		case v = <-ch[5]:
			return 5, v
		case v = <-ch[6]:
			return 6, v
		case v = <-ch[7]:
			return 7, v
		case <-done:
			return 8, v
		}
	}
	i, rv, _ := reflect.Select(sel.rc)
	if i < len(ch) {
		v = rv.Interface().(T)
	}
	return i, v
}

// selectTry is the same select without the done case and with a default:
// -1 when no channel has an item.
func selectTry[T Payload](sel *selectSet[T]) (int, T) {
	ch := sel.ch
	var v T
	switch len(ch) {
	case 1:
		select {
		case v = <-ch[0]:
			return 0, v
		default:
			return -1, v
		}
	case 2:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		default:
			return -1, v
		}
	case 3:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		default:
			return -1, v
		}
	case 4:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		case v = <-ch[3]:
			return 3, v
		default:
			return -1, v
		}
	case 5:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		case v = <-ch[3]:
			return 3, v
		case v = <-ch[4]:
			return 4, v
		default:
			return -1, v
		}
	case 6:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		case v = <-ch[3]:
			return 3, v
		case v = <-ch[4]:
			return 4, v
		case v = <-ch[5]:
			return 5, v
		default:
			return -1, v
		}
	case 7:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		case v = <-ch[3]:
			return 3, v
		case v = <-ch[4]:
			return 4, v
		case v = <-ch[5]:
			return 5, v
		case v = <-ch[6]:
			return 6, v
		default:
			return -1, v
		}
	case 8:
		select {
		case v = <-ch[0]:
			return 0, v
		case v = <-ch[1]:
			return 1, v
		case v = <-ch[2]:
			return 2, v
		case v = <-ch[3]:
			return 3, v
		case v = <-ch[4]:
			return 4, v
		case v = <-ch[5]:
			return 5, v
		case v = <-ch[6]:
			return 6, v
		case v = <-ch[7]:
			return 7, v
		default:
			return -1, v
		}
	}
	i, rv, _ := reflect.Select(sel.rcTry)
	if i < len(ch) {
		v = rv.Interface().(T)
		return i, v
	}
	return -1, v
}

func init() {
	register(&Pattern{Name: "select", Payloads: PayloadSizes, Run: BySize{
		8: selectRunT[[8]byte], 16: selectRunT[[16]byte], 24: selectRunT[[24]byte], 32: selectRunT[[32]byte],
		64: selectRunT[[64]byte], 128: selectRunT[[128]byte], 256: selectRunT[[256]byte],
		1024: selectRunT[[1024]byte], 4096: selectRunT[[4096]byte],
	}.run})
}
