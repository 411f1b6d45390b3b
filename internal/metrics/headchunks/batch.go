package headchunks

import (
	"errors"
	"fmt"
)

// window is how many samples a Batch appends under one set of locks.
const window = 16

// Batch appends many samples, as a commit or a WAL replay brings them, a
// window at a time. Appended one by one, each sample of a large head waits
// for its series' record and then its open chunk to come from memory, and
// the unlock after it (a fenced instruction) waits again for its writes to
// those lines: the misses queue up one behind the other. A Batch takes the
// window's stripe locks at once (in ascending order, as the passes of
// Truncate, Oldest and Compact take theirs), reads the records, then the
// chunks' lines, so that their misses overlap, and only then encodes the
// samples into lines in cache.
//
// A Batch is used by one goroutine; its zero value is not ready, Buffer.Batch
// makes one. Call Flush once every sample is added.
type Batch struct {
	b    *Buffer
	n    int
	refs [window]uint32
	ts   [window]int64
	vs   [window]float64

	// Appended counts the samples taken (a repeat of the last sample
	// included, as Append takes it), Mint and Maxt their time range (valid
	// when Appended > 0), Refused the others; Err is the first refusal, with
	// its series and timestamp.
	Appended, Refused int
	Mint, Maxt        int64
	Err               error

	// touched receives the bytes read ahead; written so that the reads are
	// kept (the compiler drops loads whose value is unused).
	touched byte
}

// Batch returns an empty batch appending to b.
func (b *Buffer) Batch() Batch { return Batch{b: b} }

// Add queues sample (t, v) of series ref, appending the window when full.
func (bt *Batch) Add(ref uint32, t int64, v float64) {
	bt.refs[bt.n], bt.ts[bt.n], bt.vs[bt.n] = ref, t, v
	bt.n++
	if bt.n == window {
		bt.Flush()
	}
}

// Flush appends the queued samples, in the order added.
func (bt *Batch) Flush() {
	if bt.n == 0 {
		return
	}
	b := bt.b
	var held [window]uint32
	locks := bt.lockStripes(&held)
	var recs [window]*series
	for i, ref := range bt.refs[:bt.n] {
		if ref != 0 {
			recs[i] = b.record(ref)
		}
	}
	bt.readAhead(&recs)
	for i, ref := range bt.refs[:bt.n] {
		bt.append(ref, recs[i], bt.ts[i], bt.vs[i])
	}
	for i := len(locks) - 1; i >= 0; i-- {
		b.stripes[locks[i]].Unlock()
	}
	bt.n = 0
}

// lockStripes locks the stripes of the queued refs, each once, in
// ascending order, and returns them.
func (bt *Batch) lockStripes(held *[window]uint32) []uint32 {
	n := 0
	for _, ref := range bt.refs[:bt.n] {
		if ref == 0 {
			continue
		}
		st := ref & (1<<stripeBits - 1)
		i := 0
		for i < n && held[i] < st {
			i++
		}
		if i < n && held[i] == st {
			continue
		}
		copy(held[i+1:n+1], held[i:n])
		held[i] = st
		n++
	}
	for _, st := range held[:n] {
		bt.b.stripes[st].Lock()
	}
	return held[:n]
}

// readAhead loads the records, then the first and the last written line
// of each open chunk (its header, and where the next sample goes), each
// pass's loads independent of one another so that they are in flight
// together.
func (bt *Batch) readAhead(recs *[window]*series) {
	var locs [window]uint32
	var ns [window]uint16
	for i, s := range recs[:bt.n] {
		if s != nil {
			locs[i], ns[i] = s.loc, s.n
		}
	}
	var x byte
	for i, loc := range locs[:bt.n] {
		if loc != 0 {
			c := bt.b.slabs.bytes(loc)
			x ^= c[0] ^ c[max(int(ns[i]), 1)-1]
		}
	}
	bt.touched ^= x
}

// append appends one sample with its stripe held, counting it.
func (bt *Batch) append(ref uint32, s *series, t int64, v float64) {
	var err error
	if ref == 0 {
		err = errRefZero
	} else {
		err = bt.b.appendLocked(ref, s, t, v)
	}
	if err != nil {
		if bt.Err == nil {
			bt.Err = fmt.Errorf("series %d at %d: %w", ref, t, err)
		}
		bt.Refused++
		return
	}
	if bt.Appended == 0 {
		bt.Mint, bt.Maxt = t, t
	}
	bt.Mint, bt.Maxt = min(bt.Mint, t), max(bt.Maxt, t)
	bt.Appended++
}

var errRefZero = errors.New("headchunks: series ref 0")
