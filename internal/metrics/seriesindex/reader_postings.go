package seriesindex

import (
	"context"
	"slices"

	"github.com/prometheus/prometheus/tsdb/index"
)

// Postings returns the series with label name set to any of values, sorted
// by ref. ("", "") is the all-postings key: every series.
func (r *Reader) Postings(_ context.Context, name string, values ...string) (index.Postings, error) {
	if name == "" && slices.Contains(values, "") {
		return r.all(), nil
	}
	return merged(r.ix.valuePostings(name, values)), nil
}

// PostingsForAllLabelValues returns the series that have label name, sorted
// by ref.
func (r *Reader) PostingsForAllLabelValues(_ context.Context, name string) index.Postings {
	if name == "" {
		return r.all()
	}
	return merged(r.ix.allValuePostings(name))
}

// PostingsForLabelMatching returns the series whose value of label name
// match accepts, sorted by ref. As in Prometheus's head, match runs without
// the index's lock, which a slow regexp over many values would otherwise
// hold against the creation of series: the values are listed under the
// lock, matched, and their postings read under it again.
func (r *Reader) PostingsForLabelMatching(ctx context.Context, name string, match func(string) bool) index.Postings {
	if name == "" {
		if match("") {
			return r.all()
		}
		return index.EmptyPostings()
	}
	for { // again if Delete renumbered the symbols meanwhile
		at, cands, v := r.ix.candidates(name)
		kept, err := matching(ctx, cands, &v, match)
		if err != nil {
			return index.ErrPostings(err)
		}
		if len(kept) == 0 {
			return index.EmptyPostings()
		}
		if one, refs, ok := r.ix.matchedPostings(at, kept); ok {
			return merged(one, refs)
		}
	}
}

// matching keeps the candidates whose value, read in v, match accepts.
func matching(ctx context.Context, cands []candidate, v *view, match func(string) bool) ([]candidate, error) {
	kept := cands[:0]
	for i, c := range cands {
		if i%checkEvery == 0 && ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if match(v.str(c.value)) {
			kept = append(kept, c)
		}
	}
	return kept, nil
}

// all is every series that exists now.
func (r *Reader) all() index.Postings {
	r.ix.mu.RLock()
	defer r.ix.mu.RUnlock()
	if len(r.ix.offs) == r.ix.removed {
		return index.EmptyPostings()
	}
	return &allPostings{offs: r.ix.offs, next: 1}
}

// merged is what gather returned as one postings: one list as it was, or
// several lists' refs once sorted (a series has one value of a name, so
// they never repeat a ref).
func merged(one index.Postings, refs []uint32) index.Postings {
	if one != nil {
		return one
	}
	slices.Sort(refs)
	return postingsOf(refs)
}

// gather turns postings words into postings: one is walked where it lies,
// several are expanded, unsorted, for the caller to sort after letting the
// lock go. The caller holds ix.mu.
func (ix *Index) gather(ps []uint32) (one index.Postings, refs []uint32) {
	switch {
	case len(ps) == 0:
		return index.EmptyPostings(), nil
	case len(ps) > 1:
		for _, p := range ps {
			refs = appendPosting(refs, p, ix.lists)
		}
		return nil, refs
	case ps[0]&listBit != 0:
		return &gapPostings{data: ix.lists[ps[0]&^listBit].data}, nil
	}
	return &refPostings{refs: []uint32{ps[0]}}, nil
}

// valuePostings gathers the postings of name=value for each of values.
func (ix *Index) valuePostings(name string, values []string) (index.Postings, []uint32) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.syms.mu.RLock()
	defer ix.syms.mu.RUnlock()
	ps := make([]uint32, 0, len(values))
	for _, val := range values {
		if p, ok := ix.posting(name, val); ok {
			ps = append(ps, p)
		}
	}
	slices.Sort(ps) // values may repeat
	return ix.gather(slices.Compact(ps))
}

// allValuePostings gathers the postings of every value of name.
func (ix *Index) allValuePostings(name string) (index.Postings, []uint32) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.syms.mu.RLock()
	defer ix.syms.mu.RUnlock()
	t := ix.valuesOf(name)
	if t == nil {
		return index.EmptyPostings(), nil
	}
	ps := make([]uint32, 0, t.n)
	for _, p := range t.slots {
		if p != 0 {
			ps = append(ps, p)
		}
	}
	return ix.gather(ps)
}

// valuesOf returns the values table of label name, nil if no series has
// it. The caller holds ix.mu and syms.mu.
func (ix *Index) valuesOf(name string) *values {
	nid, ok := ix.syms.get(name)
	if !ok {
		return nil
	}
	return ix.names[nid]
}

// candidate is a value of a label and the slot of its posting.
type candidate struct {
	slot  int
	value uint32
}

// tableAt is a values table as candidates listed it: its name's symbol
// and the symbols' generation (the candidates' value symbols hold until
// Delete renumbers the symbols), and its slots: while the same slots are in
// place and no Delete has moved values back, each value is in its slot.
type tableAt struct {
	name    uint32
	gen     uint64
	slots   []uint32
	deletes int
}

func (a tableAt) same(ix *Index, t *values) bool {
	return ix.deletes == a.deletes && len(t.slots) == len(a.slots) && &t.slots[0] == &a.slots[0]
}

// candidates lists the values of label name with their slots, and returns
// where its table was and a view to read the values' strings in.
func (ix *Index) candidates(name string) (at tableAt, cands []candidate, v view) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.syms.mu.RLock()
	defer ix.syms.mu.RUnlock()
	t := ix.valuesOf(name)
	if t == nil {
		return tableAt{}, nil, v
	}
	cands = make([]candidate, 0, t.n)
	for i, p := range t.slots {
		if p != 0 {
			cands = append(cands, candidate{slot: i, value: ix.valueOf(t, p)})
		}
	}
	at = tableAt{name: t.name, gen: ix.syms.gen, slots: t.slots, deletes: ix.deletes}
	return at, cands, ix.viewLocked()
}

// matchedPostings gathers the postings of the candidates kept, values that
// may have moved (the table grew) or left (Delete) since they were listed;
// ok is false if their symbols are no longer the index's.
func (ix *Index) matchedPostings(at tableAt, kept []candidate) (one index.Postings, refs []uint32, ok bool) {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if ix.syms.gen != at.gen {
		return nil, nil, false
	}
	t := ix.names[at.name]
	if t == nil {
		return index.EmptyPostings(), nil, true
	}
	same := at.same(ix, t)
	ps := make([]uint32, 0, len(kept))
	for _, c := range kept {
		var p uint32
		if same {
			p = t.slots[c.slot]
		} else {
			p = ix.candidatePosting(t, c)
		}
		if p != 0 {
			ps = append(ps, p)
		}
	}
	one, refs = ix.gather(ps)
	return one, refs, true
}

// candidatePosting is the posting of candidate c: read from its slot if
// the slot still holds its value (a table grows into a new one, and Delete
// moves values back), else looked up. The caller holds ix.mu.
func (ix *Index) candidatePosting(t *values, c candidate) uint32 {
	if c.slot < len(t.slots) {
		if p := t.slots[c.slot]; p != 0 && ix.valueOf(t, p) == c.value {
			return p
		}
	}
	p, _ := ix.get(t, c.value)
	return p
}
