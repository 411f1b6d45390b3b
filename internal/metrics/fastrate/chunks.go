package fastrate

import (
	"context"
	"errors"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// errNotPlain says a series' chunks overlap or hold histograms: the
// target is read again through the series' iterators, which decide.
var errNotPlain = errors.New("fastrate: chunks overlap")

// computeChunks is compute for a rate target reading each series' chunks
// whole, without the iterator chain's calls per sample, from a storage
// whose sources are disjoint (DisjointChunkQueryable): its chunks, none
// overlapping another, hold exactly the samples the engine's iterators
// yield, whatever their calls. Each chunk is read through its own
// iterator, which keeps the head's isolation.
func (t *target) computeChunks(ctx context.Context, q storage.ChunkQuerier, g grid, maxSamples int) (computed, error) {
	// Untrimmed: a chunk reaching past the range (the head's open one
	// always does) comes as stored instead of re-encoded, and windows
	// leave out the samples outside it.
	hints := t.hints(g)
	hints.DisableTrimming = true
	set := q.Select(ctx, false, hints, t.vs.LabelMatchers...)
	sums := t.newSums(g, maxSamples)
	var (
		r  reader
		it chunks.Iterator
	)
	for set.Next() {
		if err := ctx.Err(); err != nil {
			return computed{}, contextErr(err)
		}
		s := set.At()
		it = s.Iterator(it)
		if err := r.load(it); err != nil {
			return computed{}, err
		}
		if err := sums.rates(&r, s.Labels()); err != nil {
			return computed{}, err
		}
	}
	return sums.finish(ctx, set.Err(), set.Warnings())
}

// load resets r to the float samples of one series' chunks, read whole
// (staleness markers left out), so that window only slides over them.
func (r *reader) load(it chunks.Iterator) error {
	r.it, r.vt, r.err = nil, chunkenc.ValNone, nil
	r.pts, r.resets = r.pts[:0], r.resets[:0]
	r.lo, r.hi, r.rp = 0, 0, 0
	maxt := int64(0)
	for first := true; it.Next(); first = false {
		m := it.At()
		if m.Chunk == nil || (!first && m.MinTime <= maxt) {
			return errNotPlain
		}
		maxt = m.MaxTime
		if !r.addChunk(m.Chunk) {
			return errNotPlain // a histogram or an error: the iterators decide
		}
	}
	if it.Err() != nil {
		return errNotPlain
	}
	return nil
}
