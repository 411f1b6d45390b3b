package headchunks

import (
	"math"
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
)

// TestClosedChunkSurvivesPoolPut reads closed chunks, fresh from the chunk
// files' write queue and buffer, and puts them in a chunkenc.Pool as a
// compactor does; they must read back whole.
func TestClosedChunkSurvivesPoolPut(t *testing.T) {
	b := newBuffer(t, testRange)
	for ts := int64(0); ts < 1000*15000; ts += 15000 {
		if err := b.Append(1, ts, float64(ts)); err != nil {
			t.Fatal(err)
		}
	}
	pool := chunkenc.NewPool()
	metas := b.Chunks(1, math.MinInt64, math.MaxInt64, nil)
	for _, m := range metas {
		c, err := b.Chunk(m)
		if err != nil {
			t.Fatal(err)
		}
		if err := pool.Put(c); err != nil {
			t.Fatal(err)
		}
	}
	if got := len(readAll(t, b, 1, math.MinInt64, math.MaxInt64)); got != 1000 {
		t.Fatalf("%d samples read back after the chunks were put in a pool, want 1000", got)
	}
}
