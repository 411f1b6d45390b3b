package block

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"time"
)

// The index object lists a block's traces in ID order, after a u32 count:
//
//	entry = trace ID (16) | first row u32 | split bit + rows u31 | start i64 | duration µs u32 | longest span µs u32
//
// Besides locating a trace's rows, it lets search order candidates by start time and
// drop them by time range and duration without reading any span. Durations are kept
// in microseconds rounded up, so a "longer than" test on them never drops a match.
const indexEntry = 40

type indexRecord struct {
	ID           [16]byte
	First, Count int
	Split        bool
	Start        int64
	// Duration and MaxSpan are the trace's and its longest span's duration (ns).
	Duration, MaxSpan int64
}

func appendIndexEntry(dst []byte, r indexRecord) []byte {
	dst = append(dst, r.ID[:]...)
	dst = binary.LittleEndian.AppendUint32(dst, uint32(r.First))
	count := uint32(r.Count)
	if r.Split {
		count |= splitBit
	}
	dst = binary.LittleEndian.AppendUint32(dst, count)
	dst = binary.LittleEndian.AppendUint64(dst, uint64(r.Start))
	dst = binary.LittleEndian.AppendUint32(dst, ceilMicros(r.Duration))
	return binary.LittleEndian.AppendUint32(dst, ceilMicros(r.MaxSpan))
}

// splitBit marks, in an entry's row count, a trace that had spans in other blocks or
// heads when this block was written.
const splitBit = 1 << 31

func ceilMicros(ns int64) uint32 {
	us := (max(ns, 0) + 999) / 1000
	return uint32(min(us, int64(^uint32(0))))
}

// Index is a read view of the index object.
type Index []byte

// checkIndex validates an index read back from storage.
func checkIndex(idx []byte) (Index, error) {
	if len(idx) < 4 {
		return nil, errors.New("decode block index: too short")
	}
	n := binary.LittleEndian.Uint32(idx)
	if uint64(len(idx)-4) != uint64(n)*indexEntry {
		return nil, fmt.Errorf("decode block index: %d bytes for %d traces", len(idx)-4, n)
	}
	return Index(idx), nil
}

// Len is the number of traces in the block.
func (x Index) Len() int { return int(binary.LittleEndian.Uint32(x)) }

func (x Index) entry(i int) []byte { return x[4+i*indexEntry : 4+(i+1)*indexEntry] }

func (x Index) id(i int) []byte { return x.entry(i)[:16] }

// TraceEntry is what the index says about one trace of a block.
type TraceEntry struct {
	// Ordinal is the trace's position in the block (and in its tag postings).
	Ordinal      int
	ID           [16]byte
	First, Count int
	// Split is set when other blocks or heads held spans of the trace as this block
	// was written. The newest piece of a split trace always carries it, which is
	// what lets a search that needs whole traces skip the others' blocks.
	Split bool
	Start int64
	// Duration and MaxSpan are rounded up to whole microseconds.
	Duration, MaxSpan time.Duration
}

// At returns the i-th trace in ID order.
func (x Index) At(i int) TraceEntry {
	e := x.entry(i)
	t := TraceEntry{Ordinal: i,
		First:    int(binary.LittleEndian.Uint32(e[16:])),
		Count:    int(binary.LittleEndian.Uint32(e[20:]) &^ splitBit),
		Split:    binary.LittleEndian.Uint32(e[20:])&splitBit != 0,
		Start:    int64(binary.LittleEndian.Uint64(e[24:])),
		Duration: time.Duration(binary.LittleEndian.Uint32(e[32:])) * time.Microsecond,
		MaxSpan:  time.Duration(binary.LittleEndian.Uint32(e[36:])) * time.Microsecond,
	}
	copy(t.ID[:], e[:16])
	return t
}

// Lookup finds a trace in the index.
func (x Index) Lookup(id [16]byte) (TraceEntry, bool) {
	n := x.Len()
	i := sort.Search(n, func(i int) bool { return bytes.Compare(x.id(i), id[:]) >= 0 })
	if i == n || !bytes.Equal(x.id(i), id[:]) {
		return TraceEntry{}, false
	}
	return x.At(i), true
}
