package longterm

import (
	"encoding/binary"
	"errors"
	"math"

	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/tsdb/encoding"

	"github.com/vispyr/vispyr/internal/decbuf"
)

// Downsampling, as Thanos does it (its semantics, our own code and format):
// a block may keep, beside each series' raw column, aggregates of its
// samples over windows of a resolution (5 m, 1 h), which a range query
// whose step is at least downsampleFactor resolutions reads instead of the
// raw samples when its function can be answered from them.
//
// A window is (k×res, (k+1)×res], left-open as PromQL's ranges are, so a
// range query whose start, step and range are multiples of res sees whole
// windows only. Per window, timestamped at its last sample:
//
//	count, sum, min, max   of the window's samples (stale markers left out,
//	                       as range selectors leave them out)
//
// and the counter points: the window's first and last samples and, around
// each drop (a counter reset), the samples before and after it; a series
// that drops so often that they would be more than a quarter of its
// samples (a gauge) keeps none, and reads its raw samples instead. PromQL's
// rate and increase over those points add up the same increase as over the
// raw samples and extrapolate from the same first and last timestamps; so
// over whole windows rate, increase, min_, max_ and sum_over_time answer as
// the raw samples do (sums up to float rounding), and avg_over_time is the
// mean of the windows' means, equal to the raw mean when the windows hold
// as many samples each (regular scrapes). Over windows cut by the range's
// ends, a window counts wholly or not at all: with a range of at least
// downsampleFactor windows, at most a fifth of the range is misplaced.
const downsampleFactor = 5

// aggregates are one series' windows at one resolution.
type aggregates struct {
	ts                   []int64 // the windows' last samples
	count, sum, min, max []float64
	counterT             []int64
	counterV             []float64
}

// window is k for the window (k×res, (k+1)×res] that holds t.
func window(t, res int64) int64 {
	k := (t - 1) / res
	if (t-1)%res < 0 { // Go's division rounds toward zero
		k--
	}
	return k
}

// downsample aggregates samples (timestamps ascending) into windows of res.
func downsample(ts []int64, vs []float64, res int64) aggregates {
	var a aggregates
	var (
		cur      int64
		open     bool
		prev     float64
		prevT    int64
		havePrev bool
	)
	counter := func(t int64, v float64) {
		if n := len(a.counterT); n == 0 || a.counterT[n-1] != t {
			a.counterT, a.counterV = append(a.counterT, t), append(a.counterV, v)
		}
	}
	for i, t := range ts {
		v := vs[i]
		if value.IsStaleNaN(v) {
			continue
		}
		if w := window(t, res); !open || w != cur {
			if havePrev {
				counter(prevT, prev) // the last of the window before
			}
			cur, open = w, true
			a.ts = append(a.ts, t)
			a.count, a.sum, a.min, a.max = append(a.count, 0), append(a.sum, 0), append(a.min, v), append(a.max, v)
			counter(t, v)
		} else if v < prev {
			counter(prevT, prev) // around a reset
			counter(t, v)
		}
		k := len(a.ts) - 1
		a.ts[k] = t
		a.count[k]++
		a.sum[k] += v
		// As PromQL's min_ and max_over_time: NaN only when all are.
		if v < a.min[k] || math.IsNaN(a.min[k]) {
			a.min[k] = v
		}
		if v > a.max[k] || math.IsNaN(a.max[k]) {
			a.max[k] = v
		}
		prev, prevT, havePrev = v, t, true
	}
	if havePrev {
		counter(prevT, prev)
	}
	if len(a.counterT)*maxCounterShare > len(ts) {
		// Not a counter (a gauge drops every other sample): its rate
		// reads the raw samples rather than keeping most of them again.
		a.counterT, a.counterV = nil, nil
	}
	return a
}

// maxCounterShare: counter points are kept when at most 1 in this many
// samples is one.
const maxCounterShare = 4

// appendAggregates appends a's columns: uvarint len | column, for the
// windows' count, sum, min, max (each with the windows' timestamps) and
// the counter points.
func appendAggregates(dst []byte, a aggregates) []byte {
	for _, vs := range [][]float64{a.count, a.sum, a.min, a.max} {
		dst = appendLenColumn(dst, a.ts, vs)
	}
	if a.counterT == nil {
		return binary.AppendUvarint(dst, 0) // none: read the raw samples
	}
	return appendLenColumn(dst, a.counterT, a.counterV)
}

func appendLenColumn(dst []byte, ts []int64, vs []float64) []byte {
	col := EncodeColumn(nil, ts, vs)
	dst = binary.AppendUvarint(dst, uint64(len(col)))
	return append(dst, col...)
}

// Aggregate columns, in the order appendAggregates writes them.
const (
	aggrCount = iota
	aggrSum
	aggrMin
	aggrMax
	aggrCounter
	numAggrs
)

// errNoAggregate: the series keeps no such aggregate (no counter points).
var errNoAggregate = errors.New("no such aggregate")

// readAggregate decodes the aggregate k of an appendAggregates payload.
func readAggregate(b []byte, k int, ts []int64, vs []float64) ([]int64, []float64, error) {
	r := encoding.Decbuf{B: b}
	var col []byte
	for i := 0; i <= k; i++ {
		col = decbuf.UvarintBytes(&r)
	}
	if r.E != nil {
		return nil, nil, errCorrupt
	}
	if len(col) == 0 {
		return nil, nil, errNoAggregate
	}
	return DecodeColumn(col, ts, vs)
}
