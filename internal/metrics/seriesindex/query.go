package seriesindex

import (
	"slices"

	"github.com/prometheus/prometheus/model/labels"
)

// Postings returns the refs of the series with label name=value, sorted.
func (ix *Index) Postings(name, value string) []uint32 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.syms.mu.RLock()
	defer ix.syms.mu.RUnlock()
	return ix.valuePostings(nil, name, value)
}

// PostingsForMatchers returns the refs of the series all matchers select,
// sorted, with Prometheus's semantics: a missing label has the value "", so
// a matcher that matches "" also selects the series without its label. No
// matchers select every series.
func (ix *Index) PostingsForMatchers(ms ...*labels.Matcher) []uint32 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.syms.mu.RLock()
	defer ix.syms.mu.RUnlock()
	return ix.postingsForMatchers(ms)
}

// LabelNames returns the label names of the series the matchers select
// (of all series without matchers), sorted.
func (ix *Index) LabelNames(ms ...*labels.Matcher) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.syms.mu.RLock()
	defer ix.syms.mu.RUnlock()
	seen := map[uint32]struct{}{}
	if len(ms) == 0 {
		for n := range ix.names {
			seen[n] = struct{}{}
		}
	} else {
		for _, ref := range ix.postingsForMatchers(ms) {
			ix.eachLabel(ref, func(n, _ uint32) { seen[n] = struct{}{} })
		}
	}
	return ix.sortedStrings(seen)
}

// LabelValues returns the values of label name among the series the
// matchers select (among all series without matchers), sorted.
func (ix *Index) LabelValues(name string, ms ...*labels.Matcher) []string {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.syms.mu.RLock()
	defer ix.syms.mu.RUnlock()
	nid, ok := ix.syms.get(name)
	t := ix.names[nid]
	if !ok || t == nil {
		return nil
	}
	seen := map[uint32]struct{}{}
	if len(ms) == 0 {
		ix.eachValue(t, func(v, _ uint32) { seen[v] = struct{}{} })
	} else {
		for _, ref := range ix.postingsForMatchers(ms) {
			ix.eachLabel(ref, func(n, v uint32) {
				if n == nid {
					seen[v] = struct{}{}
				}
			})
		}
	}
	return ix.sortedStrings(seen)
}

func (ix *Index) sortedStrings(ids map[uint32]struct{}) []string {
	out := make([]string, 0, len(ids))
	for id := range ids {
		out = append(out, ix.syms.str(id))
	}
	slices.Sort(out)
	return out
}

// postingsForMatchers intersects the series each matcher selects. A matcher
// that matches "" selects every series but those whose value it does not
// match, so it is applied by subtracting those, after the intersection of
// the others (or all series if there are none), as Prometheus does. The
// caller holds ix.mu and syms.mu.
func (ix *Index) postingsForMatchers(ms []*labels.Matcher) []uint32 {
	var with, without [][]uint32
	for _, m := range ms {
		if m.Matches("") {
			without = append(without, ix.matching(m, false))
		} else {
			p := ix.matching(m, true)
			if len(p) == 0 {
				return nil
			}
			with = append(with, p)
		}
	}
	var out []uint32
	if len(with) == 0 {
		out = make([]uint32, len(ix.offs))
		for i := range out {
			out[i] = uint32(i + 1)
		}
	} else {
		slices.SortFunc(with, func(a, b []uint32) int { return len(a) - len(b) })
		out = with[0]
		for _, p := range with[1:] {
			out = intersect(out, p)
		}
	}
	for _, p := range without {
		out = subtract(out, p)
	}
	return out
}

// matching returns, sorted, the series with a value of m's label for which
// m.Matches is want.
func (ix *Index) matching(m *labels.Matcher, want bool) []uint32 {
	if vs, ok := exactValues(m, want); ok {
		var out []uint32
		for _, v := range vs {
			out = ix.valuePostings(out, m.Name, v)
		}
		return sortIfMany(out, len(vs))
	}
	nid, ok := ix.syms.get(m.Name)
	t := ix.names[nid]
	if !ok || t == nil {
		return nil
	}
	var out []uint32
	lists := 0
	ix.eachValue(t, func(v, p uint32) {
		if m.Matches(ix.syms.str(v)) == want {
			out = appendPosting(out, p, ix.lists)
			lists++
		}
	})
	return sortIfMany(out, lists)
}

// exactValues lists the values for which m.Matches is want when they are few
// and known without looking at every value: an equality, or a regexp that is
// a set of literals (`a|b`), as Prometheus's index reader does.
func exactValues(m *labels.Matcher, want bool) ([]string, bool) {
	switch {
	case m.Type == labels.MatchEqual && want, m.Type == labels.MatchNotEqual && !want:
		return []string{m.Value}, true
	case m.Type == labels.MatchRegexp && want, m.Type == labels.MatchNotRegexp && !want:
		if set := m.SetMatches(); len(set) > 0 {
			return set, true
		}
	}
	return nil, false
}

// sortIfMany sorts refs gathered from more than one postings list. A series
// has one value per name, so the lists never share a ref.
func sortIfMany(refs []uint32, lists int) []uint32 {
	if lists > 1 {
		slices.Sort(refs)
	}
	return refs
}

// valuePostings appends the series with name=value to out. The caller holds
// ix.mu and syms.mu.
func (ix *Index) valuePostings(out []uint32, name, value string) []uint32 {
	nid, okn := ix.syms.get(name)
	vid, okv := ix.syms.get(value)
	if !okn || !okv {
		return out
	}
	t := ix.names[nid]
	if t == nil {
		return out
	}
	p, ok := ix.get(t, vid)
	if !ok {
		return out
	}
	return appendPosting(out, p, ix.lists)
}
