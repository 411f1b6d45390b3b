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
	p, ok := ix.posting(name, value)
	if !ok {
		return nil
	}
	return ix.live(appendPosting(nil, p, ix.lists))
}

// live drops from refs the series a Delete under way marked removed but
// has not yet taken out of the postings. The caller holds ix.mu.
func (ix *Index) live(refs []uint32) []uint32 {
	if ix.pending == nil {
		return refs
	}
	return slices.DeleteFunc(refs, func(r uint32) bool { return ix.offs[r-1] == deadOff })
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
// (of all series without matchers), sorted. Like LabelValues' strings, they
// share the index's memory, which it never changes once written.
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
	var with, without []refSet
	for _, m := range ms {
		if m.Matches("") {
			without = append(without, ix.matching(m, false))
		} else {
			s := ix.matching(m, true)
			if ix.size(s) == 0 {
				return nil
			}
			with = append(with, s)
		}
	}
	var out []uint32
	if len(with) == 0 {
		out = make([]uint32, 0, len(ix.offs)-ix.removed)
		for i, off := range ix.offs {
			if off != deadOff {
				out = append(out, uint32(i+1))
			}
		}
	} else {
		slices.SortFunc(with, func(a, b refSet) int { return ix.size(a) - ix.size(b) })
		out = with[0].refs
		if with[0].lazy {
			out = appendPosting(nil, with[0].post, ix.lists)
		}
		for _, s := range with[1:] {
			out = ix.filter(out, s, true)
		}
	}
	for _, s := range without {
		out = ix.filter(out, s, false)
	}
	return ix.live(out)
}

// refSet is the series a matcher selects: sorted refs or, when they are
// one value's, its posting as it is (lazy), so that a long list is walked
// once during an intersection instead of being copied out first.
type refSet struct {
	refs []uint32
	post uint32
	lazy bool
}

func (ix *Index) size(s refSet) int {
	switch {
	case !s.lazy:
		return len(s.refs)
	case s.post&listBit != 0:
		return int(ix.lists[s.post&^listBit].n)
	}
	return 1
}

// filter keeps in out, sorted, the refs also in s (in) or the refs not in
// s (!in).
func (ix *Index) filter(out []uint32, s refSet, in bool) []uint32 {
	switch {
	case !s.lazy:
		return filter(out, s.refs, in)
	case s.post&listBit != 0:
		return ix.lists[s.post&^listBit].filter(out, in)
	}
	return filter(out, []uint32{s.post}, in)
}

// matching returns the series with a value of m's label for which
// m.Matches is want.
func (ix *Index) matching(m *labels.Matcher, want bool) refSet {
	if vs, ok := exactValues(m, want); ok {
		if len(vs) == 1 {
			p, ok := ix.posting(m.Name, vs[0])
			return refSet{post: p, lazy: ok}
		}
		var out []uint32
		for _, v := range vs {
			if p, ok := ix.posting(m.Name, v); ok {
				out = appendPosting(out, p, ix.lists)
			}
		}
		return refSet{refs: sortIfMany(out, len(vs))}
	}
	nid, ok := ix.syms.get(m.Name)
	t := ix.names[nid]
	if !ok || t == nil {
		return refSet{}
	}
	var out []uint32
	lists := 0
	ix.eachValue(t, func(v, p uint32) {
		if m.Matches(ix.syms.str(v)) == want {
			out = appendPosting(out, p, ix.lists)
			lists++
		}
	})
	return refSet{refs: sortIfMany(out, lists)}
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

// posting returns the posting of name=value. The caller holds ix.mu and
// syms.mu.
func (ix *Index) posting(name, value string) (uint32, bool) {
	nid, okn := ix.syms.get(name)
	vid, okv := ix.syms.get(value)
	if !okn || !okv {
		return 0, false
	}
	t := ix.names[nid]
	if t == nil {
		return 0, false
	}
	return ix.get(t, vid)
}
