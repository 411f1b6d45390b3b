package logql

import (
	"context"
	"errors"
	"sort"
	"strings"

	"github.com/grafana/regexp"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
)

// memQuerier is a logs.Querier over streams held in memory, the reference
// the engine's tests evaluate against (the real store has its own tests
// through the same contract).
type memQuerier struct {
	streams []logs.Stream
	// selects records the pushed-down parameters, so tests can check push-down.
	selects []logs.SelectParams
}

var _ logs.Querier = (*memQuerier)(nil)

func (m *memQuerier) add(ls labels.Labels, ents ...logs.Entry) {
	for i := range m.streams {
		if labels.Equal(m.streams[i].Labels, ls) {
			m.streams[i].Entries = append(m.streams[i].Entries, ents...)
			return
		}
	}
	m.streams = append(m.streams, logs.Stream{Labels: ls, Entries: ents})
}

func matchAll(ms []*labels.Matcher, ls labels.Labels) bool {
	for _, m := range ms {
		if !m.Matches(ls.Get(m.Name)) {
			return false
		}
	}
	return true
}

type memRow struct {
	ls labels.Labels
	e  logs.Entry
}

type memIter struct {
	rows []memRow
	i    int
}

func (it *memIter) Next() bool                      { it.i++; return it.i <= len(it.rows) }
func (it *memIter) At() (labels.Labels, logs.Entry) { r := it.rows[it.i-1]; return r.ls, r.e }
func (it *memIter) Err() error                      { return nil }
func (it *memIter) Close() error                    { return nil }

func (m *memQuerier) Select(_ context.Context, _ string, p logs.SelectParams) (logs.Iterator, error) {
	m.selects = append(m.selects, p)
	var res []memRow
	var filters []func(string) bool
	for _, f := range p.LineFilters {
		switch f.Op {
		case logs.Contains:
			filters = append(filters, func(s string) bool { return strings.Contains(s, f.Value) })
		case logs.NotContains:
			filters = append(filters, func(s string) bool { return !strings.Contains(s, f.Value) })
		case logs.MatchRegex, logs.NotMatchRegex:
			re, err := regexp.Compile(f.Value)
			if err != nil {
				return nil, errors.Join(logs.ErrInvalidQuery, err)
			}
			neg := f.Op == logs.NotMatchRegex
			filters = append(filters, func(s string) bool { return re.MatchString(s) != neg })
		}
	}
	for _, s := range m.streams {
		if !matchAll(p.Matchers, s.Labels) {
			continue
		}
	entries:
		for _, e := range s.Entries {
			if e.Timestamp < p.Start || e.Timestamp >= p.End {
				continue
			}
			for _, f := range filters {
				if !f(e.Line) {
					continue entries
				}
			}
			res = append(res, memRow{s.Labels, e})
		}
	}
	sort.SliceStable(res, func(i, j int) bool {
		a, b := res[i], res[j]
		if a.e.Timestamp != b.e.Timestamp {
			if p.Direction == logs.Forward {
				return a.e.Timestamp < b.e.Timestamp
			}
			return a.e.Timestamp > b.e.Timestamp
		}
		return labels.Compare(a.ls, b.ls) < 0
	})
	if p.Limit > 0 && len(res) > p.Limit {
		res = res[:p.Limit]
	}
	return &memIter{rows: res}, nil
}

func (m *memQuerier) matching(start, end int64, ms []*labels.Matcher) []labels.Labels {
	var out []labels.Labels
	for _, s := range m.streams {
		if !matchAll(ms, s.Labels) {
			continue
		}
		for _, e := range s.Entries {
			if e.Timestamp >= start && e.Timestamp < end {
				out = append(out, s.Labels)
				break
			}
		}
	}
	sort.Slice(out, func(i, j int) bool { return labels.Compare(out[i], out[j]) < 0 })
	return out
}

func (m *memQuerier) Labels(_ context.Context, _ string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	set := map[string]bool{}
	for _, ls := range m.matching(start, end, ms) {
		ls.Range(func(l labels.Label) { set[l.Name] = true })
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func (m *memQuerier) LabelValues(_ context.Context, _ string, name string, start, end int64, ms []*labels.Matcher) ([]string, error) {
	set := map[string]bool{}
	for _, ls := range m.matching(start, end, ms) {
		if v := ls.Get(name); v != "" {
			set[v] = true
		}
	}
	out := make([]string, 0, len(set))
	for k := range set {
		out = append(out, k)
	}
	sort.Strings(out)
	return out, nil
}

func (m *memQuerier) Series(_ context.Context, _ string, start, end int64, ms []*labels.Matcher) ([]labels.Labels, error) {
	return m.matching(start, end, ms), nil
}

func (m *memQuerier) Stats(_ context.Context, _ string, start, end int64, ms []*labels.Matcher) (logs.Stats, error) {
	var st logs.Stats
	for _, s := range m.streams {
		if !matchAll(ms, s.Labels) {
			continue
		}
		n := 0
		for _, e := range s.Entries {
			if e.Timestamp >= start && e.Timestamp < end {
				n++
				st.Entries++
				st.Bytes += uint64(len(e.Line))
			}
		}
		if n > 0 {
			st.Streams++
			st.Chunks++
		}
	}
	return st, nil
}

func (m *memQuerier) Volume(_ context.Context, _ string, p logs.VolumeParams) ([]logs.StreamVolume, error) {
	var out []logs.StreamVolume
	for _, s := range m.streams {
		if !matchAll(p.Matchers, s.Labels) {
			continue
		}
		buckets := map[int64]*logs.VolumeBucket{}
		var order []int64
		for _, e := range s.Entries {
			if e.Timestamp < p.Start || e.Timestamp >= p.End {
				continue
			}
			t := p.Start
			if p.Step > 0 {
				t = p.Start + (e.Timestamp-p.Start)/p.Step*p.Step
			}
			b := buckets[t]
			if b == nil {
				b = &logs.VolumeBucket{T: t}
				buckets[t] = b
				order = append(order, t)
			}
			b.Bytes += uint64(len(e.Line))
			b.Entries++
		}
		if len(order) == 0 {
			continue
		}
		sort.Slice(order, func(i, j int) bool { return order[i] < order[j] })
		sv := logs.StreamVolume{Labels: s.Labels}
		for _, t := range order {
			sv.Buckets = append(sv.Buckets, *buckets[t])
		}
		out = append(out, sv)
	}
	return out, nil
}

func (m *memQuerier) Tail(ctx context.Context, _ string, _ []*labels.Matcher, _ logs.TailFilter) (<-chan logs.Stream, func() []logs.DroppedEntry, error) {
	ch := make(chan logs.Stream)
	go func() { <-ctx.Done(); close(ch) }()
	return ch, func() []logs.DroppedEntry { return nil }, nil
}
