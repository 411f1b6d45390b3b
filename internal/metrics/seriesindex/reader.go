package seriesindex

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/index"
)

// checkEvery is how many series or values a long loop handles between
// looks at its context, as Prometheus's head reader does.
const checkEvery = 128

// Reader answers for an Index every method of Prometheus's tsdb.IndexReader
// but Series, which a head adds with the series' chunks (Index.AppendLabels
// gives their labels). Refs are storage.SeriesRef(ref). It answers as
// Prometheus's head does, including the all-postings key ("", "") that
// tsdb.PostingsForMatchers asks for every series with.
//
// A Reader is safe for concurrent use and sees series created after it:
// each call sees the series that exist when it runs (postings it returns
// hold no later series). Strings it returns share the index's memory, which
// is never freed or changed while the Index lives, so they stay valid after
// Close.
type Reader struct{ ix *Index }

// Reader returns a reader of ix.
func (ix *Index) Reader() *Reader { return &Reader{ix: ix} }

// Close does nothing: a Reader holds no resources.
func (*Reader) Close() error { return nil }

// Symbols returns the names and values of the series' labels, sorted, and
// "" (the all-postings key's name and value) when there are series, as
// Prometheus's head does. It walks the series on a snapshot, without lock.
func (r *Reader) Symbols() index.StringIter {
	v := r.ix.view()
	used, live := v.usedSymbols()
	if !live {
		return index.NewStringListIter(nil)
	}
	out := []string{""}
	for id := range v.symOffs {
		if used.has(uint32(id)) {
			out = append(out, v.str(uint32(id)))
		}
	}
	slices.Sort(out)
	return index.NewStringListIter(slices.Compact(out))
}

// usedSymbols marks the symbols v's series use; live is whether it has any.
func (v *view) usedSymbols() (used bitset, live bool) {
	used = make(bitset, len(v.symOffs)/64+1)
	for ref := range v.offs {
		enc, ok := v.labelsOf(storage.SeriesRef(ref + 1))
		live = live || ok
		eachPair(enc, func(n, val uint32) {
			used.set(n)
			used.set(val)
		})
	}
	return used, live
}

// SortedLabelValues is LabelValues, sorted; a limit in hints then keeps the
// smallest values.
func (r *Reader) SortedLabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, error) {
	vals, err := r.labelValues(ctx, name, ms)
	if err != nil {
		return nil, err
	}
	slices.Sort(vals)
	vals, _ = hints.ApplyLimit(vals)
	return vals, nil
}

// LabelValues returns the values of label name among the series the
// matchers select (all series without matchers), in no order.
func (r *Reader) LabelValues(ctx context.Context, name string, hints *storage.LabelHints, ms ...*labels.Matcher) ([]string, error) {
	vals, err := r.labelValues(ctx, name, ms)
	if err != nil {
		return nil, err
	}
	vals, _ = hints.ApplyLimit(vals)
	return vals, nil
}

func (r *Reader) labelValues(ctx context.Context, name string, ms []*labels.Matcher) ([]string, error) {
	if len(ms) == 0 {
		if name == "" {
			return r.allKeyValue(r.ix.Len() > 0), nil
		}
		return r.ix.LabelValues(name), nil
	}
	p, err := tsdb.PostingsForMatchers(ctx, selector{r}, ms...)
	if err != nil {
		return nil, fmt.Errorf("postings for matchers: %w", err)
	}
	if name == "" {
		return r.allKeyValue(p.Next()), p.Err()
	}
	return r.valuesFor(ctx, name, p)
}

// allKeyValue is the values of the all-postings key's name "": "" if any
// series is selected.
func (*Reader) allKeyValue(selected bool) []string {
	if selected {
		return []string{""}
	}
	return nil
}

// valuesFor returns the values of label name among the series p holds.
func (r *Reader) valuesFor(ctx context.Context, name string, p index.Postings) ([]string, error) {
	v, nid, ok := r.ix.viewWith(name)
	if !ok {
		return nil, nil
	}
	seen := map[uint32]struct{}{}
	for i := 0; p.Next(); i++ {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		enc, _ := v.labelsOf(p.At())
		if val, ok := valueIn(enc, nid); ok {
			seen[val] = struct{}{}
		}
	}
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("expand postings: %w", err)
	}
	return v.strings(seen), nil
}

// strings returns the strings of the symbols in ids, in no order.
func (v *view) strings(ids map[uint32]struct{}) []string {
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, v.str(id))
	}
	return out
}

// LabelNames returns the label names of the series the matchers select (of
// all series without matchers), sorted.
func (r *Reader) LabelNames(ctx context.Context, ms ...*labels.Matcher) ([]string, error) {
	if len(ms) == 0 {
		return r.ix.LabelNames(), nil
	}
	p, err := tsdb.PostingsForMatchers(ctx, selector{r}, ms...)
	if err != nil {
		return nil, fmt.Errorf("postings for matchers: %w", err)
	}
	return r.LabelNamesFor(ctx, p)
}

// LabelNamesFor returns the label names of the series p holds, sorted; refs
// of no series are skipped, as the head does for series it collected.
func (r *Reader) LabelNamesFor(ctx context.Context, p index.Postings) ([]string, error) {
	v := r.ix.view()
	seen := map[uint32]struct{}{}
	for i := 0; p.Next(); i++ {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		enc, _ := v.labelsOf(p.At())
		eachPair(enc, func(n, _ uint32) { seen[n] = struct{}{} })
	}
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("expand postings: %w", err)
	}
	names := v.strings(seen)
	slices.Sort(names)
	return names, nil
}

// SortedPostings returns the series of p that exist, ordered by their
// labels as labels.Compare orders them. It sorts on a snapshot, without
// lock.
func (r *Reader) SortedPostings(p index.Postings) index.Postings {
	v := r.ix.view()
	refs, err := v.existing(p, nil)
	if err != nil {
		return index.ErrPostings(err)
	}
	slices.SortFunc(refs, func(a, b uint32) int {
		ea, _ := v.labelsOf(storage.SeriesRef(a))
		eb, _ := v.labelsOf(storage.SeriesRef(b))
		return v.compare(ea, eb)
	})
	return postingsOf(refs)
}

// ShardedPostings returns the series of p whose labels' labels.StableHash
// modulo shardCount is shardIndex, the shard Prometheus's head puts them in.
func (r *Reader) ShardedPostings(p index.Postings, shardIndex, shardCount uint64) index.Postings {
	if shardCount == 0 {
		return index.ErrPostings(errors.New("seriesindex: shard count 0"))
	}
	v := r.ix.view()
	var buf []byte
	refs, err := v.existing(p, func(enc []byte) bool {
		return v.stableHash(&buf, enc)%shardCount == shardIndex
	})
	if err != nil {
		return index.ErrPostings(err)
	}
	return postingsOf(refs)
}

// existing returns the refs of p that are series of v and that keep (if
// not nil) accepts, in p's order.
func (v *view) existing(p index.Postings, keep func(enc []byte) bool) ([]uint32, error) {
	var refs []uint32
	for p.Next() {
		enc, ok := v.labelsOf(p.At())
		if ok && (keep == nil || keep(enc)) {
			refs = append(refs, uint32(p.At()))
		}
	}
	if err := p.Err(); err != nil {
		return nil, fmt.Errorf("expand postings: %w", err)
	}
	return refs, nil
}

// selector lets tsdb.PostingsForMatchers, which takes a whole IndexReader
// but asks only for postings, select series for LabelNames and LabelValues,
// so that matchers mean here exactly what they mean in Prometheus.
type selector struct{ *Reader }

var errNoSeries = errors.New("seriesindex: Reader has no Series; the head adds it")

func (selector) Series(storage.SeriesRef, *labels.ScratchBuilder, *[]chunks.Meta) error {
	return errNoSeries
}
