package head

import (
	"cmp"
	"container/heap"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/vispyr/vispyr/internal/metrics/seriesindex"
)

// Stats is the head's statistics as Prometheus's tsdb.Head.Stats gives
// them to the TSDB status API: series, time bounds, and the cardinality
// lists of PostingsStats. Its chunks are NumChunks: Prometheus's API reads
// its head's from a metric, tsdb.Stats has no place for them.
func (h *Head) Stats(statsByLabelName string, limit int) *tsdb.Stats {
	return &tsdb.Stats{
		NumSeries:         uint64(h.NumSeries()),
		MinTime:           h.MinTime(),
		MaxTime:           h.MaxTime(),
		IndexPostingStats: PostingsStats(h.LabelPairs(nil), statsByLabelName, limit),
	}
}

// NumChunks is the number of chunks in the head, each series' open one and
// the closed ones not yet truncated, as Prometheus's head counts them in
// prometheus_tsdb_head_chunks (the TSDB status API's chunkCount). Appends
// wait while it counts, for a look at each slab class, not at each series;
// it waits for a truncation under way (headchunks.Buffer.Count).
func (h *Head) NumChunks() int {
	open, closed := h.samples.Count()
	return open + closed
}

// LabelPairs appends every label pair of the head's series, with its number
// of series, to dst: the figures Stats is made of, for a caller that merges
// them with another head's.
func (h *Head) LabelPairs(dst []seriesindex.LabelPair) []seriesindex.LabelPair {
	return h.index.LabelPairs(dst)
}

// PostingsStats computes the lists of Prometheus's MemPostings.Stats from
// label pairs, which may repeat (pairs of several heads: their series add
// up, their values are counted once): series by value of label
// statsByLabelName, values by label name, memory by label name
// (labels.SizeOfLabels of each value's series, as Prometheus's head
// reckons it) and series by pair, the top limit of each, by count
// descending as Prometheus sorts them, ties by name. pairs is sorted in
// place.
func PostingsStats(pairs []seriesindex.LabelPair, statsByLabelName string, limit int) *index.PostingsStats {
	slices.SortFunc(pairs, func(a, b seriesindex.LabelPair) int {
		return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.Value, b.Value))
	})
	for len(pairs) > 0 && pairs[0].Name == "" { // as MemPostings skips its all-series key
		pairs = pairs[1:]
	}
	metrics, names, memory, pairStats := newTop(limit), newTop(limit), newTop(limit), newTop(limit)
	numPairs := 0
	for i := 0; i < len(pairs); {
		name := pairs[i].Name
		var values, size uint64
		for i < len(pairs) && pairs[i].Name == name {
			value := pairs[i].Value
			var series uint64
			series, i = sumSeries(pairs, i)
			values++
			size += labels.SizeOfLabels(name, value, series)
			if name == statsByLabelName {
				metrics.push(value, series)
			}
			if pairStats.wants(series) { // spares building the name of pairs left out
				pairStats.push(name+"="+value, series)
			}
		}
		numPairs += int(values)
		names.push(name, values)
		memory.push(name, size)
	}
	return &index.PostingsStats{
		CardinalityMetricsStats: metrics.sorted(), CardinalityLabelStats: names.sorted(),
		LabelValueStats: memory.sorted(), LabelValuePairsStats: pairStats.sorted(),
		NumLabelPairs: numPairs,
	}
}

// sumSeries adds up the series of the pairs, from i on, of pairs[i]'s name
// and value (one a head), and returns the index past them.
func sumSeries(pairs []seriesindex.LabelPair, i int) (series uint64, next int) {
	for next = i; next < len(pairs) && pairs[next].Name == pairs[i].Name && pairs[next].Value == pairs[i].Value; next++ {
		series += uint64(pairs[next].Series)
	}
	return series, next
}

// top keeps the limit stats of highest count pushed, in a heap whose root
// is the one to give up first: the lowest count, of those the last by name.
// Which of equal counts at the cut are kept is as arbitrary as in
// Prometheus's lists.
type top struct {
	limit int
	h     statHeap
}

func newTop(limit int) *top { return &top{limit: limit} }

func (t *top) wants(count uint64) bool {
	return len(t.h) < t.limit || (t.limit > 0 && count > t.h[0].Count)
}

func (t *top) push(name string, count uint64) {
	switch {
	case len(t.h) < t.limit:
		heap.Push(&t.h, index.Stat{Name: name, Count: count})
	case t.wants(count):
		t.h[0] = index.Stat{Name: name, Count: count}
		heap.Fix(&t.h, 0)
	}
}

// sorted is the stats kept by count descending, then name.
func (t *top) sorted() []index.Stat {
	out := []index.Stat(t.h)
	if out == nil {
		out = []index.Stat{}
	}
	slices.SortFunc(out, func(a, b index.Stat) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	return out
}

type statHeap []index.Stat

func (h statHeap) Len() int { return len(h) }
func (h statHeap) Less(i, j int) bool {
	return h[i].Count < h[j].Count || (h[i].Count == h[j].Count && h[i].Name > h[j].Name)
}
func (h statHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *statHeap) Push(x any)   { *h = append(*h, x.(index.Stat)) }
func (h *statHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}
