package metrics

import (
	"context"
	"errors"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/index"

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
// same labels, or out-of-order floats the own head refused) counts once,
// as in one head. Chunks are counted apart (headChunks): Prometheus's API
// reads its head's from a metric, not from its Stats.
func (t *tenantDB) headStats(ctx context.Context, statsByLabelName string, limit int) (*tsdb.Stats, error) {
	h := t.db.Head()
	if t.own == nil {
		return h.Stats(statsByLabelName, limit), nil
	}
	// The TSDB head holds only histograms and refused floats next to an
	// own head: walking its postings for exact counts is cheap.
	own := t.own.head
	pairs, both, err := tsdbHeadPairs(ctx, h, own)
	if err != nil {
		return nil, err
	}
	pairs = own.LabelPairs(pairs)
	st := &tsdb.Stats{
		NumSeries:         uint64(max(int(h.NumSeries())+own.NumSeries()-both, 0)), // either may have dropped series since
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
// own Stats), leaving out the both series the own head holds too.
func tsdbHeadPairs(ctx context.Context, h *tsdb.Head, own *head.Head) (pairs []seriesindex.LabelPair, both int, err error) {
	ir, err := h.Index()
	if err != nil {
		return nil, 0, fmt.Errorf("tsdb head stats: %w", err)
	}
	defer ir.Close()
	inOwn, err := alsoInOwnHead(ctx, ir, own)
	if err != nil {
		return nil, 0, err
	}
	names, err := ir.LabelNames(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("tsdb head stats: label names: %w", err)
	}
	for _, name := range names {
		values, err := ir.LabelValues(ctx, name, nil)
		if err != nil {
			return nil, 0, fmt.Errorf("tsdb head stats: values of %q: %w", name, err)
		}
		for _, v := range values {
			n, err := countPostings(ctx, ir, name, v, inOwn)
			if err != nil {
				return nil, 0, err
			}
			if n > 0 {
				pairs = append(pairs, seriesindex.LabelPair{Name: name, Value: v, Series: n})
			}
		}
	}
	return pairs, len(inOwn), nil
}

// alsoInOwnHead returns the TSDB head's series the own head holds too.
func alsoInOwnHead(ctx context.Context, ir tsdb.IndexReader, own *head.Head) (map[storage.SeriesRef]struct{}, error) {
	name, value := index.AllPostingsKey()
	p, err := ir.Postings(ctx, name, value)
	if err != nil {
		return nil, fmt.Errorf("tsdb head stats: all series: %w", err)
	}
	both := map[storage.SeriesRef]struct{}{}
	var sb labels.ScratchBuilder
	for p.Next() {
		if err := ir.Series(p.At(), &sb, nil); err != nil {
			if errors.Is(err, storage.ErrNotFound) { // removed since
				continue
			}
			return nil, fmt.Errorf("tsdb head stats: series: %w", err)
		}
		if own.HasSeries(sb.Labels()) {
			both[p.At()] = struct{}{}
		}
	}
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("tsdb head stats: all series: %w", err)
	}
	return both, nil
}

// countPostings counts the series with name=value but those to skip.
func countPostings(ctx context.Context, ir tsdb.IndexReader, name, value string, skip map[storage.SeriesRef]struct{}) (int, error) {
	p, err := ir.Postings(ctx, name, value)
	if err != nil {
		return 0, fmt.Errorf("tsdb head stats: postings of %s=%q: %w", name, value, err)
	}
	n := 0
	for p.Next() {
		if _, ok := skip[p.At()]; !ok {
			n++
		}
	}
	if err := p.Err(); err != nil {
		return 0, fmt.Errorf("tsdb head stats: postings of %s=%q: %w", name, value, err)
	}
	return n, nil
}
