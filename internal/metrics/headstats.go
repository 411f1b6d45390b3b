package metrics

import (
	"context"
	"fmt"

	"github.com/prometheus/prometheus/tsdb"

	"github.com/vispyr/vispyr/internal/metrics/head"
	"github.com/vispyr/vispyr/internal/metrics/seriesindex"
)

// headStats is the tenant's head statistics for the TSDB status API: its
// TSDB head's, or with an own head, both heads' as one head holding all
// their series would give them. Series counts add up, values are counted
// once however many heads have them (so label value counts are of the
// union), and memory by label name is reckoned on the merged counts, as
// Prometheus reckons it on its head's.
//
// A series with samples in both heads (floats and histograms under the
// same labels, or out-of-order floats the own head refused) counts in
// each: telling them apart would mean looking every series of one head up
// in the other. The chunk count stays Prometheus's (the TSDB head's, from
// its metrics, default tenant only): the own head keeps no count of its
// chunks.
func (t *tenantDB) headStats(ctx context.Context, statsByLabelName string, limit int) (*tsdb.Stats, error) {
	h := t.db.Head()
	if t.own == nil {
		return h.Stats(statsByLabelName, limit), nil
	}
	// The TSDB head holds only histograms and refused floats next to an
	// own head: walking its postings for exact counts is cheap.
	pairs, err := tsdbHeadPairs(ctx, h)
	if err != nil {
		return nil, err
	}
	own := t.own.head
	pairs = own.LabelPairs(pairs)
	st := &tsdb.Stats{
		NumSeries:         h.NumSeries() + uint64(own.NumSeries()),
		MinTime:           h.MinTime(),
		MaxTime:           h.MaxTime(),
		IndexPostingStats: head.PostingsStats(pairs, statsByLabelName, limit),
	}
	switch {
	case own.NumSeries() == 0:
	case h.NumSeries() == 0:
		st.MinTime, st.MaxTime = own.MinTime(), own.MaxTime()
	default:
		st.MinTime, st.MaxTime = min(st.MinTime, own.MinTime()), max(st.MaxTime, own.MaxTime())
	}
	return st, nil
}

// tsdbHeadPairs lists the label pairs of the TSDB head's series with their
// numbers of series, as the head's postings hold them (the figures of its
// own Stats).
func tsdbHeadPairs(ctx context.Context, h *tsdb.Head) ([]seriesindex.LabelPair, error) {
	ir, err := h.Index()
	if err != nil {
		return nil, fmt.Errorf("tsdb head stats: %w", err)
	}
	defer ir.Close()
	names, err := ir.LabelNames(ctx)
	if err != nil {
		return nil, fmt.Errorf("tsdb head stats: label names: %w", err)
	}
	var pairs []seriesindex.LabelPair
	for _, name := range names {
		values, err := ir.LabelValues(ctx, name, nil)
		if err != nil {
			return nil, fmt.Errorf("tsdb head stats: values of %q: %w", name, err)
		}
		for _, v := range values {
			n, err := countPostings(ctx, ir, name, v)
			if err != nil {
				return nil, err
			}
			pairs = append(pairs, seriesindex.LabelPair{Name: name, Value: v, Series: n})
		}
	}
	return pairs, nil
}

func countPostings(ctx context.Context, ir tsdb.IndexReader, name, value string) (int, error) {
	p, err := ir.Postings(ctx, name, value)
	if err != nil {
		return 0, fmt.Errorf("tsdb head stats: postings of %s=%q: %w", name, value, err)
	}
	n := 0
	for p.Next() {
		n++
	}
	if err := p.Err(); err != nil {
		return 0, fmt.Errorf("tsdb head stats: postings of %s=%q: %w", name, value, err)
	}
	return n, nil
}
