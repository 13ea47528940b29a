package main

// pipeline: the twin of workloads/pipeline.c (seed 000's flows_pipeline,
// the cancellable pipeline of Go's "Pipelines and cancellation"): sources ->
// S map stages (W goroutines each) -> sink, wired by channels of
// --capacity. Every stage is
//
//	go func() { defer close(out); for { select {
//	    case n, ok := <-in: if !ok { return }
//	        select { case out <- f(n): case <-ctx.Done(): return }
//	    case <-ctx.Done(): return } } }()
//
// the last of a stage's W goroutines to exit closing its output. Stage s
// maps v -> Mix(v + s + 1); --work-ns of busy work per item per stage.
// --set cancel_at=K: the sink cancels the pipeline's ctx after K items and
// leaves. One op: an item through all the stages (received by the sink);
// latency: the source's send start -> the sink's receive end.
// Metrics: cancel_to_exit_ns, leaked_threads.
//
// Variant seed: the playbooks' `for n := range in { out <- f(n) }` and a
// source `out <- n`, no ctx anywhere: once the sink has cancelled and left,
// the stages block in their sends (unless the channels buffer everything
// left). The run reports "leaked N threads", then releases them. The C
// closes every channel; in Go a send on a closed channel panics (and a
// close concurrent with a send is a data race), so here the release is a
// flag the seed's goroutines read after each send (harness machinery, not
// the seed's) and one drainer per channel that receives until the channel
// is closed: each blocked send completes, its goroutine sees the flag and
// returns, and the owners close the channels as they exit. What the
// drainers receive is counted as left in the channels (its final value
// too), like what the channels hold after the run.
//
// Invariants (as the C): count and checksum of the mapped values (sent =
// received + dropped on the cancel + left in the channels); the sink checks
// each value is the S-fold map of its tag; without a cancel nothing dropped
// or left and the sink's range ended on the close, count mode: exactly
// --items; per-source order with width 1; every source and stage exits
// within 1 s of the sink's cancel; every goroutine ended.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

const (
	pipelineTagShift  = 40
	pipelineExitBound = uint64(time.Second)
)

type pipelineItem struct{ tag, v, ts uint64 }

type pipelineState struct {
	r                      *Run
	sources, stages, width int
	seed                   bool
	perSource, extra       uint64
	cancelAt               uint64
	ch                     []chan pipelineItem // ch[s] feeds stage s, ch[stages] the sink
	ctx                    context.Context
	cancel                 context.CancelFunc
	allExited              chan struct{} // closed by the last source/stage goroutine to exit
	live, liveSources      int32
	released               atomic.Bool // seed: the leak is counted; a goroutine may stop after its send
	sent, sentSum          uint64
	dropped, droppedSum    uint64
	got, gotSum            uint64 // the sink's, read after Join
	badValue, badOrder     uint64
	badTag, cancelledAt    uint64
	sinkClosed             bool // the sink's range ended on the close
	left, leftSum          uint64
	leftMu                 sync.Mutex
	stageLive              []int32
}

func pipelineMap(v uint64, s int) uint64 { return Mix(v + uint64(s) + 1) }

// the value an item should carry after stages from..S-1
func (p *pipelineState) pipelineMapRest(v uint64, from int) uint64 {
	for s := from; s < p.stages; s++ {
		v = pipelineMap(v, s)
	}
	return v
}

func (p *pipelineState) pipelineThreadExit() {
	if atomic.AddInt32(&p.live, -1) == 0 {
		close(p.allExited)
	}
}

func (p *pipelineState) source(t *Thread, id uint64) {
	r := p.r
	sample := r.Cfg.LatSample
	n := p.perSource
	if id < p.extra {
		n++
	}
	untilSample := int64(0)
	var seq, sum uint64
	out := p.ch[0]
	t.Phase("send")
loop:
	for ; r.More(seq, n); seq++ {
		it := pipelineItem{tag: id<<pipelineTagShift | seq}
		it.v = it.tag
		if sample > 0 {
			if untilSample--; untilSample <= 0 {
				untilSample = sample
				it.ts = Now()
			}
		}
		if p.seed {
			out <- it // the pitfall: no ctx case
			sum += p.pipelineMapRest(it.tag, 0)
			if p.released.Load() { // (the harness's release, not the seed's)
				seq++
				break
			}
			continue
		}
		select {
		case out <- it:
		case <-p.ctx.Done():
			break loop // cancelled: not sent
		}
		sum += p.pipelineMapRest(it.tag, 0)
	}
	atomic.AddUint64(&p.sent, seq)
	atomic.AddUint64(&p.sentSum, sum)
	t.Ops = seq
	t.Phase("close")
	if atomic.AddInt32(&p.liveSources, -1) == 0 {
		close(out)
	}
	t.Phase("done")
	p.pipelineThreadExit()
}

func (p *pipelineState) stage(t *Thread, s int) {
	in, out := p.ch[s], p.ch[s+1]
	work := p.r.Cfg.WorkNs
	var n uint64
	t.Phase("recv")
	if p.seed {
		for it := range in {
			it.v = pipelineMap(it.v, s)
			if work > 0 {
				Work(work)
			}
			t.Phase("send")
			out <- it // the pitfall: no ctx case
			n++
			if p.released.Load() { // (the harness's release, not the seed's)
				break
			}
			t.Phase("recv")
		}
	} else {
	loop:
		for {
			var it pipelineItem
			var ok bool
			select {
			case it, ok = <-in:
				if !ok {
					break loop
				}
			case <-p.ctx.Done():
				break loop
			}
			it.v = pipelineMap(it.v, s)
			if work > 0 {
				Work(work)
			}
			t.Phase("send")
			select {
			case out <- it:
			case <-p.ctx.Done():
				// cancelled with an item in hand: dropped, and accounted for
				atomic.AddUint64(&p.dropped, 1)
				atomic.AddUint64(&p.droppedSum, p.pipelineMapRest(it.v, s+1))
				break loop
			}
			n++
			t.Phase("recv")
		}
	}
	t.Ops = n
	t.Phase("close")
	if atomic.AddInt32(&p.stageLive[s], -1) == 0 {
		close(out) // defer close(out), the last of W
	}
	t.Phase("done")
	p.pipelineThreadExit()
}

func (p *pipelineState) sink(t *Thread) {
	last := make([]int64, p.sources)
	for i := range last {
		last[i] = -1
	}
	var got, sum uint64
	t.Phase("recv")
	// No ctx: the sink reads until the last stage closes its output, or
	// cancels the pipeline itself and leaves.
	p.sinkClosed = true
	for it := range p.ch[p.stages] {
		if it.ts != 0 {
			t.Hist.Record(Since(it.ts))
		}
		src, seq := it.tag>>pipelineTagShift, int64(it.tag&(1<<pipelineTagShift-1))
		if src >= uint64(p.sources) {
			p.badTag++
		} else {
			if p.width == 1 && seq <= last[src] {
				p.badOrder++
			}
			last[src] = seq
		}
		if it.v != p.pipelineMapRest(it.tag, 0) {
			p.badValue++
		}
		sum += it.v
		got++
		if got == p.cancelAt {
			t.Phase("cancel")
			p.cancelledAt = Now()
			p.cancel()
			p.sinkClosed = false
			break
		}
	}
	p.got, p.gotSum = got, sum
	t.Ops = got
	t.Phase("done")
}

// pipelineDrain receives what channel i holds until it is closed (the
// seed's release), counting each item's final value as left.
func (p *pipelineState) pipelineDrain(i int) {
	var n, sum uint64
	for it := range p.ch[i] {
		n++
		sum += p.pipelineMapRest(it.v, i)
	}
	p.leftMu.Lock()
	p.left += n
	p.leftSum += sum
	p.leftMu.Unlock()
}

func pipelineRun(r *Run) error {
	c := r.Cfg
	p := &pipelineState{
		r:        r,
		sources:  int(c.Producers),
		stages:   int(c.Param("stages")),
		width:    int(c.Param("width")),
		cancelAt: uint64(c.Param("cancel_at")),
		seed:     c.Variant == "seed",
	}
	p.perSource = uint64(c.Items) / uint64(p.sources)
	p.extra = uint64(c.Items) % uint64(p.sources)
	p.live = int32(p.sources + p.stages*p.width)
	p.liveSources = int32(p.sources)
	p.ch = make([]chan pipelineItem, p.stages+1)
	for i := range p.ch {
		p.ch[i] = make(chan pipelineItem, c.Capacity)
	}
	p.stageLive = make([]int32, p.stages)
	p.ctx, p.cancel = context.WithCancel(context.Background())
	defer p.cancel()
	p.allExited = make(chan struct{})

	r.Spawn("sink", p.sink)
	for s := 0; s < p.stages; s++ {
		s := s
		p.stageLive[s] = int32(p.width)
		for w := 0; w < p.width; w++ {
			r.Spawn("stage", func(t *Thread) { p.stage(t, s) })
		}
	}
	for i := 0; i < p.sources; i++ {
		id := uint64(i)
		r.Spawn("source", func(t *Thread) { p.source(t, id) })
	}

	r.Start()
	r.WaitDuration()
	// The sink ends either when the last stage closes its output (it
	// received everything) or by cancelling; after a cancel every other
	// goroutine has 1 s to exit.
	leaked := 0
	select {
	case <-p.allExited:
	case <-p.ctx.Done():
		bound, cancelBound := context.WithTimeout(context.Background(), time.Duration(pipelineExitBound))
		select {
		case <-p.allExited:
		default:
			select {
			case <-p.allExited:
			case <-bound.Done():
				leaked = int(atomic.LoadInt32(&p.live))
			}
		}
		cancelBound()
	}
	if leaked > 0 {
		r.Fail("pipeline leaked %d of %d source/stage threads: still blocked %.1f s after the sink cancelled "+
			"(a send without a ctx case)", leaked, p.sources+p.stages*p.width, float64(pipelineExitBound)/1e9)
		// counted; now release them: each blocked send completes into a
		// drainer, its goroutine sees the flag and returns, closing its
		// output as the last of its stage
		p.released.Store(true)
		var wg sync.WaitGroup
		for i := range p.ch {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				p.pipelineDrain(i)
			}(i)
		}
		wg.Wait()
	}
	r.Join()

	// what the channels still hold, each item's final value (all closed by
	// now: each by its owner as it exited)
	for i := range p.ch {
		p.pipelineDrain(i)
	}
	sent, dropped := p.sent, p.dropped
	cancelled := p.cancelledAt != 0
	var exitNs uint64
	if cancelled {
		exitNs = Diff(r.TEnd, p.cancelledAt)
	}
	if p.badValue > 0 {
		r.Fail("%d items reached the sink with a wrong value (not the %d-stage map of their tag)", p.badValue,
			p.stages)
	}
	if p.badTag > 0 {
		r.Fail("%d items reached the sink with an unknown source", p.badTag)
	}
	if p.badOrder > 0 {
		r.Fail("per-source order broken %d times (width 1: every stage is FIFO)", p.badOrder)
	}
	if sent != p.got+dropped+p.left {
		r.Fail("count: sources sent %d, sink received %d + dropped on cancel %d + left in channels %d", sent,
			p.got, dropped, p.left)
	} else if p.sentSum != p.gotSum+p.droppedSum+p.leftSum {
		r.Fail("checksum of the mapped values: sources' %016x != sink's + dropped + left %016x", p.sentSum,
			p.gotSum+p.droppedSum+p.leftSum)
	}
	if !cancelled && (dropped > 0 || p.left > 0 || !p.sinkClosed) {
		end := "closed"
		if !p.sinkClosed {
			end = "ok"
		}
		r.Fail("no cancellation, yet %d dropped, %d left in channels, sink ended with %s", dropped, p.left, end)
	}
	if !cancelled && c.Duration <= 0 && !r.Stopped() && p.got != uint64(c.Items) {
		r.Fail("count: the sink received %d items, expected %d", p.got, c.Items)
	}
	if leaked == 0 && exitNs > pipelineExitBound {
		r.Fail("cancellation took %.3f s to stop every stage (bound %.1f s)", float64(exitNs)/1e9,
			float64(pipelineExitBound)/1e9)
	}
	if cancelled {
		r.Metric("cancel_to_exit_ns", float64(exitNs))
	}
	r.Metric("leaked_threads", float64(leaked))
	r.Ops = p.got
	return nil
}

func init() {
	register(&Pattern{
		Name:     "pipeline",
		Params:   []string{"stages", "width", "cancel_at"},
		Variants: []string{"default", "seed"},
		Metrics:  []string{"cancel_to_exit_ns", "leaked_threads"},
		Run:      pipelineRun,
	})
}
