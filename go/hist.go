package main

// Hist is cpbench's latency histogram (runtime/hist.c) in Go: the same
// HdrHistogram log-linear layout (3 significant digits, 1 ns to an hour),
// so that a Go histogram sent to cpbench lands slot for slot in a C one and
// is merged and summarised by the same code. Not safe for concurrent use:
// one per goroutine, merged after the run.
//
// Layout (see hist.c): S = 2048 sub-buckets, H = 1024, m = 10; value v is in
// bucket k = (64 - clz(v | (S-1))) - 11, sub-bucket v >> k, slot
// ((k+1) << 10) + (v >> k) - 1024.
import (
	"math"
	"math/bits"
)

const (
	histHighest  = 3600 * 1000000000
	histS        = 2048
	histMask     = histS - 1
	histHalfMag  = 10
	histHalf     = 1 << histHalfMag
	histBuckets  = 64 - 11 - 21 // bucket_index(histHighest)+1, checked in init
	histCountLen = (histBuckets + 1) * histHalf
)

type Hist struct {
	counts   []uint64 // nil until the first value: most goroutines never record
	total    uint64
	min, max uint64
	clamped  uint64
}

func init() {
	if bucketIndex(histHighest)+1 != histBuckets {
		panic("hist: bucket count")
	}
}

func bucketIndex(v uint64) int {
	return (64 - bits.LeadingZeros64(v|histMask)) - (histHalfMag + 1)
}

func slotOf(v uint64) int {
	b := bucketIndex(v)
	return ((b + 1) << histHalfMag) + int(v>>uint(b)) - histHalf
}

// lowest value of a slot
func slotValue(i int) uint64 {
	b := i>>histHalfMag - 1
	sub := uint64(i&(histHalf-1) + histHalf)
	if b < 0 {
		return uint64(i)
	}
	return sub << uint(b)
}

func (h *Hist) Record(v uint64) {
	if h.counts == nil {
		h.counts = make([]uint64, histCountLen)
		h.min = ^uint64(0)
	}
	if v > histHighest {
		v = histHighest
		h.clamped++
	}
	h.counts[slotOf(v)]++
	h.total++
	if v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
}

func (h *Hist) Count() uint64 { return h.total }

func (h *Hist) reset() {
	if h.counts != nil {
		for i := range h.counts {
			h.counts[i] = 0
		}
	}
	h.total, h.min, h.max, h.clamped = 0, ^uint64(0), 0, 0
}

func (h *Hist) merge(o *Hist) {
	if o.total == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, histCountLen)
		h.min = ^uint64(0)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.total += o.total
	h.clamped += o.clamped
	if o.min < h.min {
		h.min = o.min
	}
	if o.max > h.max {
		h.max = o.max
	}
}

// Percentile is cp_hist_percentile: the highest value equivalent to the
// slot holding rank ceil(pct% x count) (a few ulps shaved, as
// HdrHistogram does, so that 100*k/n lands on rank k), at most the max;
// 0 when empty. For a pattern's own metrics (a median, a p99).
func (h *Hist) Percentile(pct float64) uint64 {
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
			if v := slotValue(i+1) - 1; v < h.max {
				return v
			}
			return h.max
		}
	}
	return h.max
}
