package fastrate

import (
	"math"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// reader reads one series' float samples as the engine's matrix selector
// does, step by step, and keeps them all, so each step's window is a range
// of them and its increase costs O(1) plus one addition per counter reset
// in it.
//
// It calls the series iterator exactly as the engine's buffered iterator
// does (Seek to the window's start when the samples read so far end
// before it, Next otherwise): merged iterators (blocks, head, out-of-order
// head) may pick a different one of two samples at one timestamp after a
// Seek than after a Next, so only the same calls read the same samples.
type reader struct {
	it   chunkenc.Iterator // nil: the samples were loaded whole
	cit  chunkenc.Iterator // a chunk's, reused
	vt   chunkenc.ValueType
	last int64 // the buffered iterator's lastTime
	pts  []promql.FPoint
	// resets are the indexes i of pts where pts[i].F < pts[i-1].F.
	resets []int
	lo, hi int   // the last window
	rp     int   // the first reset after lo
	err    error // errFallback: a histogram or an iterator error
}

func (r *reader) reset(it chunkenc.Iterator) {
	r.it, r.last = it, math.MinInt64
	r.pts, r.resets = r.pts[:0], r.resets[:0]
	r.lo, r.hi, r.rp = 0, 0, 0
	// The engine's Reset moves to the first sample but leaves lastTime
	// unset, so its first Seek always seeks.
	r.vt = it.Next()
	r.err = nil
	switch {
	case r.vt != chunkenc.ValNone:
		r.err = r.take()
		r.last = math.MinInt64
	case it.Err() != nil:
		r.err = errFallback
	}
}

// window reads up to maxt as the engine's BufferedSeriesIterator.Seek(maxt)
// does and returns the samples in (mint, maxt] as pts[lo:hi], staleness
// markers left out. The engine's buffer reaches back the range (mint)
// until a window was read, then min(range, step): the same seeks, since
// with a step under the range the last sample read is past the previous
// step's end, which is after maxt − step.
func (r *reader) window(mint, maxt int64) (lo, hi int, err error) {
	if r.err != nil {
		return 0, 0, r.err
	}
	if r.vt != chunkenc.ValNone && mint > r.last {
		r.vt = r.it.Seek(mint)
		if err := r.advanced(); err != nil {
			return 0, 0, err
		}
	}
	for r.vt != chunkenc.ValNone && r.last < maxt {
		r.vt = r.it.Next()
		if err := r.advanced(); err != nil {
			return 0, 0, err
		}
	}
	for r.lo < len(r.pts) && r.pts[r.lo].T <= mint {
		r.lo++
	}
	r.hi = max(r.hi, r.lo)
	for r.hi < len(r.pts) && r.pts[r.hi].T <= maxt {
		r.hi++
	}
	return r.lo, r.hi, nil
}

// advanced takes the sample the iterator moved to, or its error.
func (r *reader) advanced() error {
	if r.vt == chunkenc.ValNone {
		if r.it.Err() != nil {
			return errFallback // the engine's own error
		}
		return nil
	}
	return r.take()
}

// take notes the current sample's time as the buffered iterator's
// lastTime and keeps the sample unless it is a staleness marker or was
// taken already (a Seek to before it stays on it).
func (r *reader) take() error {
	if r.vt != chunkenc.ValFloat {
		return errFallback // histograms: the engine's
	}
	t, f := r.it.At()
	r.last = t
	r.add(t, f)
	return nil
}

// add keeps a sample unless it is a staleness marker or not after the
// last one kept.
func (r *reader) add(t int64, f float64) {
	n := len(r.pts)
	if n > 0 && t <= r.pts[n-1].T {
		return
	}
	if value.IsStaleNaN(f) {
		return
	}
	if n > 0 && f < r.pts[n-1].F {
		r.resets = append(r.resets, n)
	}
	r.pts = append(r.pts, promql.FPoint{T: t, F: f})
}

// increase is extrapolatedRate's unextrapolated increase over pts[lo:hi]:
// last − first, plus the value before each reset, in order.
func (r *reader) increase(lo, hi int) float64 {
	result := r.pts[hi-1].F - r.pts[lo].F
	for r.rp < len(r.resets) && r.resets[r.rp] <= lo {
		r.rp++
	}
	for _, i := range r.resets[r.rp:] {
		if i >= hi {
			break
		}
		result += r.pts[i-1].F
	}
	return result
}
