package seriesindex

// LabelPair is a label name and value and the number of series that have
// them.
type LabelPair struct {
	Name, Value string
	Series      int
}

// LabelPairs appends to dst every label pair of the index's series, each
// once and in no order, with its number of series: what a TSDB status
// page's cardinality figures are made of. The strings share the index's
// memory, which it never changes once written. It holds Index.mu and
// symbols.mu (read) for the whole walk, as Prometheus's MemPostings.Stats
// holds its postings' lock.
func (ix *Index) LabelPairs(dst []LabelPair) []LabelPair {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	ix.syms.mu.RLock()
	defer ix.syms.mu.RUnlock()
	for _, t := range ix.names {
		name := ix.syms.str(t.name)
		ix.eachValue(t, func(v, p uint32) {
			dst = append(dst, LabelPair{Name: name, Value: ix.syms.str(v), Series: ix.seriesOf(p)})
		})
	}
	return dst
}

// seriesOf is the number of series of posting p. The caller holds ix.mu.
func (ix *Index) seriesOf(p uint32) int {
	if p&listBit != 0 {
		return int(ix.lists[p&^listBit].n)
	}
	return 1
}
