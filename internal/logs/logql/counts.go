package logql

import (
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
)

// countOnly reports whether x only counts lines or bytes of the stream's own
// entries, past the line filters the store applies, so it can be answered
// from timestamps and sizes alone.
func countOnly(x *RangeAggExpr, pl *Pipeline) bool {
	switch x.Op {
	case "count_over_time", "rate", "bytes_over_time", "bytes_rate":
	default:
		return false
	}
	return pl.noop && x.Unwrap == nil
}

// stepCounter counts a series' lines and bytes between the boundaries that
// the steps' windows (end-rng, end] start and end on, in one pass over the
// entries in any order: a window's count is then the difference of two
// prefix sums.
type stepCounter struct {
	labels       labels.Labels
	lines, bytes []int64 // [j]: entries with bounds[j-1] < ts <= bounds[j]
}

// evalCounts answers a count-only range aggregation with
// logs.SampleQuerier: no line is read and each stream's labels are grouped
// once, not per entry.
func (ev *evaluator) evalCounts(sq logs.SampleQuerier, x *RangeAggExpr, pl *Pipeline) (*stepMatrix, error) {
	rng, off := x.Range.Nanoseconds(), x.Offset.Nanoseconds()
	ends := make([]int64, len(ev.ts))
	bounds := make([]int64, 0, 2*len(ev.ts))
	for i, t := range ev.ts {
		ends[i] = t*int64(time.Millisecond) - off
		bounds = append(bounds, ends[i], ends[i]-rng)
	}
	slices.Sort(bounds)
	bounds = slices.Compact(bounds)

	series := map[string]*stepCounter{}
	var keyBuf []byte
	var lastStream, lastMeta labels.Labels
	var errKind string // a metadata __error__ label fails the query, as in the general path
	var errLabels labels.Labels
	var last *stepCounter
	err := sq.SelectSamples(ev.ctx, ev.p.Tenant, logs.SelectParams{
		Matchers: x.Log.Matchers, Start: ends[0] - rng + 1, End: ends[len(ends)-1] + 1, LineFilters: pl.pushed,
	}, func(stream, meta labels.Labels, ts []int64, sizes []int32) {
		if last == nil || !labels.Equal(stream, lastStream) || !labels.Equal(meta, lastMeta) {
			ls := stream
			if !meta.IsEmpty() {
				// Metadata joins the series' labels, as the general path's pipeline does.
				var set labelSet
				set.reset(stream, meta)
				ls = set.labels(-1)
				if v, bad := set.get(ErrorLabel); bad && errKind == "" {
					errKind, errLabels = v, ls
				}
			}
			if x.Grouping != nil {
				ls = group(ls, x.Grouping)
			}
			keyBuf = ls.Bytes(keyBuf[:0])
			last = series[string(keyBuf)]
			if last == nil {
				last = &stepCounter{labels: ls, lines: make([]int64, len(bounds)+1), bytes: make([]int64, len(bounds)+1)}
				series[string(keyBuf)] = last
			}
			lastStream, lastMeta = stream, meta
		}
		// Times come sorted, so the bucket only moves forward: walk it rather
		// than search for each line.
		j, prev := 0, int64(math.MinInt64)
		for k, t := range ts {
			if t < prev || k == 0 {
				j, _ = slices.BinarySearch(bounds, t)
			}
			for j < len(bounds) && bounds[j] < t {
				j++
			}
			prev = t
			last.lines[j]++
			last.bytes[j] += int64(sizes[k])
			ev.stats.BytesProcessed += int64(sizes[k])
		}
		ev.stats.LinesProcessed += int64(len(ts))
	})
	if err != nil {
		return nil, fmt.Errorf("select samples: %w", err)
	}
	if errKind != "" {
		return nil, errPipeline(errKind, errLabels)
	}
	if len(series)*len(ev.ts) > ev.e.opts.MaxPoints {
		return nil, fmt.Errorf("maximum number of series (%d) reached for a single query; consider reducing query cardinality by adding more filters or aggregations", ev.e.opts.MaxSeries)
	}
	// endIdx[i] and startIdx[i] index the bounds step i's window ends and starts on.
	endIdx := make([]int, len(ends))
	startIdx := make([]int, len(ends))
	for i, e := range ends {
		endIdx[i], _ = slices.BinarySearch(bounds, e)
		startIdx[i], _ = slices.BinarySearch(bounds, e-rng)
	}
	secs := float64(rng) / 1e9
	out := &stepMatrix{}
	for _, c := range series {
		for j := 1; j < len(c.lines); j++ {
			c.lines[j] += c.lines[j-1]
			c.bytes[j] += c.bytes[j-1]
		}
		s := ev.newSeries(c.labels)
		for i := range ends {
			n := c.lines[endIdx[i]] - c.lines[startIdx[i]]
			if n == 0 {
				continue
			}
			b := float64(c.bytes[endIdx[i]] - c.bytes[startIdx[i]])
			s.ok[i] = true
			switch x.Op {
			case "count_over_time":
				s.vals[i] = float64(n)
			case "rate":
				s.vals[i] = float64(n) / secs
			case "bytes_over_time":
				s.vals[i] = b
			case "bytes_rate":
				s.vals[i] = b / secs
			}
		}
		out.series = append(out.series, s)
	}
	sortByLabels(out.series)
	return out, nil
}
