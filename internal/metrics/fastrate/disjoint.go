package fastrate

import (
	"context"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
)

// DisjointChunkQueryable is a storage that can say when its series'
// chunks, as stored, hold exactly the samples its queriers' series
// iterators yield whatever calls read them. Rate targets then read whole
// chunks, without the iterators' calls per sample.
type DisjointChunkQueryable interface {
	// DisjointChunkQuerier returns a chunk querier over [mint, maxt] of
	// ctx's data when no two of its sources there (blocks, head,
	// out-of-order head, other tiers) overlap in time; nil otherwise.
	// Where sources overlap, a merged iterator may pick another of two
	// samples at one timestamp after a Seek than after a Next, and chunks
	// merged by the chunk querier hide that.
	DisjointChunkQuerier(ctx context.Context, mint, maxt int64) storage.ChunkQuerier
}

// DisjointChunkQuerier is DisjointChunkQueryable's for a TSDB: its chunk
// querier when the blocks overlapping [mint, maxt] do not overlap each
// other nor the head, and no out-of-order head data falls in it.
func DisjointChunkQuerier(db *tsdb.DB, mint, maxt int64) storage.ChunkQuerier {
	// Opened first: whatever compaction changes after, no two sources
	// overlapped when it took its blocks, or the check below sees one.
	// (A block compacted from the head since holds the head's samples.)
	q, err := db.ChunkQuerier(mint, maxt)
	if err != nil {
		return nil
	}
	if !Disjoint(db, mint, maxt, db.Head().MinTime()) {
		q.Close()
		return nil
	}
	return q
}

// Disjoint reports whether, over [mint, maxt], db's blocks overlap neither
// each other nor the in-order head data from headMint on (the TSDB's head's
// MinTime, or that of a head beside it), and no out-of-order head data of
// db falls in it. Open the querier before checking, so that a compaction
// in between is seen.
func Disjoint(db *tsdb.DB, mint, maxt, headMint int64) bool {
	h := db.Head()
	if h.MinOOOTime() <= maxt && mint <= h.MaxOOOTime() {
		return false
	}
	// Blocks come ordered by their start; end is the last one's (exclusive).
	end, seen := int64(0), false
	for _, b := range db.Blocks() {
		if !b.OverlapsClosedInterval(mint, maxt) {
			continue
		}
		m := b.Meta()
		if seen && m.MinTime < end {
			return false
		}
		end, seen = m.MaxTime, true
	}
	return !seen || maxt < headMint || headMint >= end
}
