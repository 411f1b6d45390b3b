package headchunks

import (
	"bytes"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"
)

// TestBatchIsAppend appends the same samples, refusals and series repeated
// within a window included, sample by sample to one buffer (held to
// Prometheus's head) and through a Batch to another: both must end with
// the same chunks, and the batch must count what Append took and refused.
func TestBatchIsAppend(t *testing.T) {
	for _, chunkRange := range []int64{testRange, 60000, 1} {
		t.Run(strconv.FormatInt(chunkRange, 10), func(t *testing.T) {
			samples := shapes(rand.New(rand.NewPCG(3, uint64(chunkRange))), 24, 700)
			each, h := newBuffer(t, chunkRange), newHead(t, chunkRange)
			appendBoth(t, each, h, samples)
			sameChunks(t, each, h, 24)

			want := newBuffer(t, chunkRange)
			taken, refused := 0, 0
			mint, maxt := int64(math.MaxInt64), int64(math.MinInt64)
			var firstErr error
			for _, s := range samples {
				if err := want.Append(uint32(s.series+1), s.t, s.v); err != nil {
					refused++
					if firstErr == nil {
						firstErr = err
					}
					continue
				}
				taken++
				mint, maxt = min(mint, s.t), max(maxt, s.t)
			}
			got := newBuffer(t, chunkRange)
			bt := got.Batch()
			for _, s := range samples {
				bt.Add(uint32(s.series+1), s.t, s.v)
			}
			bt.Flush()
			if bt.Appended != taken || bt.Refused != refused || bt.Mint != mint || bt.Maxt != maxt {
				t.Fatalf("batch took %d [%d, %d] and refused %d; Append took %d [%d, %d] and refused %d",
					bt.Appended, bt.Mint, bt.Maxt, bt.Refused, taken, mint, maxt, refused)
			}
			if refused == 0 || !errors.Is(bt.Err, kind(firstErr)) {
				t.Fatalf("batch's first error %v, Append's %v (of %d refused)", bt.Err, firstErr, refused)
			}
			sameBuffers(t, got, want, 24)
		})
	}
}

// TestBatchRefusesRefZero: a sample of series 0 is refused, the others of
// its window are taken.
func TestBatchRefusesRefZero(t *testing.T) {
	b := newBuffer(t, testRange)
	bt := b.Batch()
	bt.Add(1, 1000, 1)
	bt.Add(0, 1000, 2)
	bt.Add(2, 1000, 3)
	bt.Flush()
	if bt.Appended != 2 || bt.Refused != 1 || bt.Err == nil {
		t.Fatalf("took %d, refused %d (%v); want 2, 1 and an error", bt.Appended, bt.Refused, bt.Err)
	}
	for ref := uint32(1); ref <= 2; ref++ {
		if ts := readAll(t, b, ref, 0, math.MaxInt64); len(ts) != 1 {
			t.Fatalf("series %d holds %v, want its sample", ref, ts)
		}
	}
}

// TestBatchesInParallel runs batches of series that share stripes from
// several goroutines while Compact, Oldest and reads take every stripe or
// one, as a head's commits, truncations and queries do (run it with -race):
// nothing deadlocks, every sample is taken and reads back.
func TestBatchesInParallel(t *testing.T) {
	const writers, perWriter, rounds = 4, 3000, 150
	b := newBuffer(t, 60000) // short chunks: many cuts
	var wg sync.WaitGroup
	done := make(chan struct{})
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for r := range rounds {
				bt := b.Batch()
				for i := range perWriter {
					bt.Add(uint32(i*writers+w+1), int64(r)*15000, float64(r))
				}
				bt.Flush()
				if bt.Refused != 0 {
					t.Errorf("writer %d round %d: refused %d: %v", w, r, bt.Refused, bt.Err)
					return
				}
			}
		}()
	}
	go func() { wg.Wait(); close(done) }()
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			b.Compact()
			b.Oldest()
			readAll(t, b, 1, 0, math.MaxInt64)
		}
	}
	for ref := uint32(1); ref <= writers*perWriter; ref += 997 {
		if ts := readAll(t, b, ref, 0, math.MaxInt64); len(ts) != rounds || ts[rounds-1] != (rounds-1)*15000 {
			t.Fatalf("series %d holds %d samples, want %d", ref, len(ts), rounds)
		}
	}
}

// sameBuffers fails unless series 1..n have the same chunks in both.
func sameBuffers(t *testing.T, got, want *Buffer, n int) {
	t.Helper()
	for ref := uint32(1); ref <= uint32(n); ref++ {
		g, w := got.Chunks(ref, math.MinInt64, math.MaxInt64, nil), want.Chunks(ref, math.MinInt64, math.MaxInt64, nil)
		if len(g) != len(w) {
			t.Fatalf("series %d: %d chunks, want %d", ref, len(g), len(w))
		}
		for i := range w {
			gc, err := got.Chunk(g[i])
			if err != nil {
				t.Fatal(err)
			}
			wc, err := want.Chunk(w[i])
			if err != nil {
				t.Fatal(err)
			}
			if g[i].MinTime != w[i].MinTime || g[i].MaxTime != w[i].MaxTime || !bytes.Equal(gc.Bytes(), wc.Bytes()) {
				t.Fatalf("series %d chunk %d differs: [%d, %d] %x, want [%d, %d] %x", ref, i,
					g[i].MinTime, g[i].MaxTime, gc.Bytes(), w[i].MinTime, w[i].MaxTime, wc.Bytes())
			}
		}
	}
}
