package seriesindex

import (
	"math"
	"slices"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/index"
)

// refPostings is an index.Postings over refs as the index holds them,
// uint32, so a result needs no copy as []storage.SeriesRef (8 B a ref).
// Seek assumes sorted refs, like Prometheus's list postings, and so does
// not apply to SortedPostings' label order.
type refPostings struct {
	refs []uint32
	cur  uint32
}

// postingsOf returns refs as postings, the empty postings Prometheus
// recognises when there are none (its intersections then stop early).
func postingsOf(refs []uint32) index.Postings {
	if len(refs) == 0 {
		return index.EmptyPostings()
	}
	return &refPostings{refs: refs}
}

func (p *refPostings) Next() bool {
	if len(p.refs) == 0 {
		p.cur = 0
		return false
	}
	p.cur, p.refs = p.refs[0], p.refs[1:]
	return true
}

func (p *refPostings) Seek(v storage.SeriesRef) bool {
	if storage.SeriesRef(p.cur) >= v {
		return true
	}
	if len(p.refs) == 0 || v > math.MaxUint32 {
		p.refs = nil
		return false
	}
	i, _ := slices.BinarySearch(p.refs, uint32(v))
	if i == len(p.refs) {
		p.refs = nil
		return false
	}
	p.cur, p.refs = p.refs[i], p.refs[i+1:]
	return true
}

func (p *refPostings) At() storage.SeriesRef { return storage.SeriesRef(p.cur) }

func (*refPostings) Err() error { return nil }

// gapPostings walks a postings list's varint gaps where they lie: a list
// only grows by appending, past the end a walk holds, so it needs neither
// a copy nor the index's lock.
type gapPostings struct {
	data     []byte
	sum, cur uint32
}

func (p *gapPostings) Next() bool {
	if len(p.data) == 0 {
		p.cur = 0
		return false
	}
	d, k := uvarint(p.data)
	p.sum += d
	p.cur, p.data = p.sum, p.data[k:]
	return true
}

// Seek decodes forward: the gaps have no skip table, and the lists long
// enough for one to matter are those of values most series share, which
// are rarely the smaller side of an intersection.
func (p *gapPostings) Seek(v storage.SeriesRef) bool {
	if storage.SeriesRef(p.cur) >= v {
		return true
	}
	sum, data := p.sum, p.data
	for len(data) > 0 && storage.SeriesRef(sum) < v {
		if c := data[0]; c < 0x80 { // most gaps take a byte
			sum, data = sum+uint32(c), data[1:]
			continue
		}
		d, k := uvarint(data)
		sum, data = sum+d, data[k:]
	}
	p.sum, p.data = sum, data
	if storage.SeriesRef(sum) < v {
		p.cur = 0
		return false
	}
	p.cur = sum
	return true
}

func (p *gapPostings) At() storage.SeriesRef { return storage.SeriesRef(p.cur) }

func (*gapPostings) Err() error { return nil }

// allPostings is every series of a snapshot of the offsets, the refs 1 to
// len(offs) but removed ones, without a list.
type allPostings struct {
	offs      []uint32
	next, cur uint32
}

func (p *allPostings) Next() bool {
	for int(p.next) <= len(p.offs) {
		p.cur = p.next
		p.next++
		if p.offs[p.cur-1] != deadOff {
			return true
		}
	}
	p.cur = 0
	return false
}

func (p *allPostings) Seek(v storage.SeriesRef) bool {
	if storage.SeriesRef(p.cur) >= v {
		return true
	}
	if v > storage.SeriesRef(p.next) {
		p.next = uint32(min(v, storage.SeriesRef(len(p.offs))+1))
	}
	return p.Next()
}

func (p *allPostings) At() storage.SeriesRef { return storage.SeriesRef(p.cur) }

func (*allPostings) Err() error { return nil }
