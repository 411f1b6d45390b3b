package logs

import (
	"container/heap"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/grafana/regexp"

	"github.com/prometheus/prometheus/model/labels"
)

// source is one chunk or head snapshot of one stream, loaded only when the merge
// reaches its time range.
type source struct {
	labels     labels.Labels
	minT, maxT int64
	load       func() ([]Entry, error)
}

// lineFilter compiles filters into one predicate (nil: keep all) and the
// substrings every matching line must contain, for the chunk filters.
func compileFilters(fs []LineFilter) (func(string) bool, []string, error) {
	if len(fs) == 0 {
		return nil, nil, nil
	}
	var preds []func(string) bool
	var needles []string
	for _, f := range fs {
		switch f.Op {
		case Contains:
			v := f.Value
			needles = append(needles, v)
			preds = append(preds, func(l string) bool { return strings.Contains(l, v) })
		case NotContains:
			v := f.Value
			preds = append(preds, func(l string) bool { return !strings.Contains(l, v) })
		case MatchRegex, NotMatchRegex:
			re, err := regexp.Compile(f.Value)
			if err != nil {
				return nil, nil, fmt.Errorf("%w: invalid regex %q: %v", ErrInvalidQuery, f.Value, err)
			}
			want := f.Op == MatchRegex
			preds = append(preds, func(l string) bool { return re.MatchString(l) == want })
		default:
			return nil, nil, fmt.Errorf("%w: unknown line filter operator %d", ErrInvalidQuery, f.Op)
		}
	}
	return func(l string) bool {
		for _, p := range preds {
			if !p(l) {
				return false
			}
		}
		return true
	}, needles, nil
}

// Select implements Querier.
func (s *Store) Select(ctx context.Context, tenantName string, p SelectParams) (Iterator, error) {
	if err := checkSelector(p.Matchers); err != nil {
		return nil, err
	}
	if p.End < p.Start {
		return nil, fmt.Errorf("%w: end is before start", ErrInvalidQuery)
	}
	keep, needles, err := compileFilters(p.LineFilters)
	if err != nil {
		return nil, err
	}
	var srcs []source
	for _, st := range s.tenant(tenantName).selectStreams(p.Matchers) {
		chunks, head := st.snapshot(p.Start, p.End)
		for _, c := range chunks {
			if !mayMatch(c.meta.Filter, needles) {
				continue
			}
			c := c
			srcs = append(srcs, source{labels: st.labels, minT: c.meta.MinT, maxT: c.meta.MaxT, load: func() ([]Entry, error) {
				data, err := c.bytes()
				if err != nil {
					return nil, err
				}
				return decodeChunk(data, p.Start, p.End, keep)
			}})
		}
		if len(head) > 0 {
			if keep != nil {
				head = slices.DeleteFunc(head, func(e Entry) bool { return !keep(e.Line) })
			}
			if len(head) > 0 {
				h := head
				srcs = append(srcs, source{labels: st.labels, minT: h[0].Timestamp, maxT: h[len(h)-1].Timestamp,
					load: func() ([]Entry, error) { return h, nil }})
			}
		}
	}
	return newMergeIterator(ctx, srcs, p.Direction, p.Limit), nil
}

func mayMatch(f trigramFilter, needles []string) bool {
	for _, n := range needles {
		if !f.mayContain(n) {
			return false
		}
	}
	return true
}

// mergeIterator merges sources in time order, opening a source only when no open
// one holds an entry before its range starts (after it ends, going backward):
// sources are overlapping sorted runs, so this keeps memory to the chunks that
// overlap the current time.
type mergeIterator struct {
	ctx     context.Context
	srcs    []source
	next    int // next source to open
	dir     Direction
	limit   int
	emitted int
	h       cursorHeap
	cur     cursor
	err     error
}

type cursor struct {
	labels  labels.Labels
	entries []Entry
	i       int // next index (forward) or last index (backward)
	order   int // source order, for ties
}

func (c *cursor) at(dir Direction) Entry {
	if dir == Forward {
		return c.entries[c.i]
	}
	return c.entries[len(c.entries)-1-c.i]
}

func newMergeIterator(ctx context.Context, srcs []source, dir Direction, limit int) *mergeIterator {
	if dir == Forward {
		slices.SortStableFunc(srcs, func(a, b source) int { return cmpInt(a.minT, b.minT) })
	} else {
		slices.SortStableFunc(srcs, func(a, b source) int { return cmpInt(b.maxT, a.maxT) })
	}
	return &mergeIterator{ctx: ctx, srcs: srcs, dir: dir, limit: limit, h: cursorHeap{dir: dir}}
}

// openDue opens sources whose range may hold entries that sort before the
// current heap top.
func (m *mergeIterator) openDue() error {
	for m.next < len(m.srcs) {
		src := m.srcs[m.next]
		if len(m.h.cs) > 0 {
			top := m.h.cs[0].at(m.dir).Timestamp
			if (m.dir == Forward && src.minT > top) || (m.dir == Backward && src.maxT < top) {
				return nil
			}
		}
		if err := m.ctx.Err(); err != nil {
			return err
		}
		entries, err := src.load()
		if err != nil {
			return err
		}
		m.next++
		if len(entries) > 0 {
			heap.Push(&m.h, &cursor{labels: src.labels, entries: entries, order: m.next})
		}
	}
	return nil
}

func (m *mergeIterator) Next() bool {
	if m.err != nil || (m.limit > 0 && m.emitted >= m.limit) {
		return false
	}
	if err := m.openDue(); err != nil {
		m.err = err
		return false
	}
	if len(m.h.cs) == 0 {
		return false
	}
	c := m.h.cs[0]
	m.cur = cursor{labels: c.labels, entries: c.entries, i: c.i}
	c.i++
	if c.i == len(c.entries) {
		heap.Pop(&m.h)
	} else {
		heap.Fix(&m.h, 0)
	}
	m.emitted++
	return true
}

func (m *mergeIterator) At() (labels.Labels, Entry) { return m.cur.labels, m.cur.at(m.dir) }
func (m *mergeIterator) Err() error                 { return m.err }
func (m *mergeIterator) Close() error               { m.h.cs = nil; m.srcs = nil; return nil }

type cursorHeap struct {
	cs  []*cursor
	dir Direction
}

func (h cursorHeap) Len() int { return len(h.cs) }
func (h cursorHeap) Less(i, j int) bool {
	a, b := h.cs[i].at(h.dir).Timestamp, h.cs[j].at(h.dir).Timestamp
	if a != b {
		if h.dir == Forward {
			return a < b
		}
		return a > b
	}
	if c := labels.Compare(h.cs[i].labels, h.cs[j].labels); c != 0 {
		return c < 0
	}
	return h.cs[i].order < h.cs[j].order
}
func (h cursorHeap) Swap(i, j int) { h.cs[i], h.cs[j] = h.cs[j], h.cs[i] }
func (h *cursorHeap) Push(x any)   { h.cs = append(h.cs, x.(*cursor)) }
func (h *cursorHeap) Pop() any {
	c := h.cs[len(h.cs)-1]
	h.cs = h.cs[:len(h.cs)-1]
	return c
}

// streamsInRange returns the matching streams with data in [start, end).
func (s *Store) streamsInRange(tenantName string, start, end int64, ms []*labels.Matcher) []*stream {
	sts := s.tenant(tenantName).selectStreams(ms)
	return slices.DeleteFunc(sts, func(st *stream) bool { return !st.overlaps(start, end) })
}

// Labels implements Querier.
func (s *Store) Labels(_ context.Context, tenantName string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	set := map[string]struct{}{}
	for _, st := range s.streamsInRange(tenantName, start, end, ms) {
		st.labels.Range(func(l labels.Label) { set[l.Name] = struct{}{} })
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// LabelValues implements Querier.
func (s *Store) LabelValues(_ context.Context, tenantName, name string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	set := map[string]struct{}{}
	for _, st := range s.streamsInRange(tenantName, start, end, ms) {
		if v := st.labels.Get(name); v != "" {
			set[v] = struct{}{}
		}
	}
	return slices.Sorted(maps.Keys(set)), nil
}

// Series implements Querier.
func (s *Store) Series(_ context.Context, tenantName string, start, end int64, ms []*labels.Matcher) ([]labels.Labels, error) {
	var out []labels.Labels
	for _, st := range s.streamsInRange(tenantName, start, end, ms) {
		out = append(out, st.labels)
	}
	slices.SortFunc(out, labels.Compare)
	return out, nil
}

// Stats implements Querier. Chunks that overlap the range count whole, as Loki's
// index stats do.
func (s *Store) Stats(_ context.Context, tenantName string, start, end int64, ms []*labels.Matcher) (Stats, error) {
	var st Stats
	for _, str := range s.streamsInRange(tenantName, start, end, ms) {
		chunks, head := str.snapshot(start, end)
		st.Streams++
		for _, c := range chunks {
			st.Chunks++
			st.Entries += uint64(c.meta.Entries)
			st.Bytes += uint64(c.meta.RawBytes)
		}
		if len(head) > 0 {
			st.Chunks++
		}
		for _, e := range head {
			st.Entries++
			st.Bytes += uint64(len(e.Line))
		}
	}
	return st, nil
}

// Volume implements Querier. A chunk's bytes are spread over the buckets its
// time span covers, in proportion to the overlap; head lines count exactly.
func (s *Store) Volume(_ context.Context, tenantName string, p VolumeParams) ([]StreamVolume, error) {
	if p.End < p.Start {
		return nil, fmt.Errorf("%w: end is before start", ErrInvalidQuery)
	}
	step := p.Step
	if step <= 0 {
		step = p.End - p.Start + 1
	}
	var out []StreamVolume
	for _, st := range s.streamsInRange(tenantName, p.Start, p.End, p.Matchers) {
		chunks, head := st.snapshot(p.Start, p.End)
		acc := map[int64]*VolumeBucket{}
		add := func(t int64, bytes, entries float64) {
			k := p.Start + (t-p.Start)/step*step
			b := acc[k]
			if b == nil {
				b = &VolumeBucket{T: k}
				acc[k] = b
			}
			b.Bytes += uint64(bytes + 0.5)
			b.Entries += uint64(entries + 0.5)
		}
		for _, c := range chunks {
			spreadChunk(c.meta, p.Start, p.End, step, add)
		}
		for _, e := range head {
			add(e.Timestamp, float64(len(e.Line)), 1)
		}
		sv := StreamVolume{Labels: st.labels}
		for _, b := range acc {
			if b.Bytes > 0 || b.Entries > 0 {
				sv.Buckets = append(sv.Buckets, *b)
			}
		}
		slices.SortFunc(sv.Buckets, func(a, b VolumeBucket) int { return cmpInt(a.T, b.T) })
		if len(sv.Buckets) > 0 {
			out = append(out, sv)
		}
	}
	slices.SortFunc(out, func(a, b StreamVolume) int { return labels.Compare(a.Labels, b.Labels) })
	return out, nil
}

// spreadChunk calls add for each step bucket the chunk overlaps in [start, end),
// with the share of its bytes and entries proportional to the overlap.
func spreadChunk(m chunkMeta, start, end, step int64, add func(t int64, bytes, entries float64)) {
	lo, hi := max(m.MinT, start), min(m.MaxT, end-1)
	span := float64(m.MaxT-m.MinT) + 1
	for t := start + (lo-start)/step*step; t <= hi; t += step {
		a, b := max(t, lo), min(t+step-1, hi)
		frac := (float64(b-a) + 1) / span
		add(a, frac*float64(m.RawBytes), frac*float64(m.Entries))
	}
}
