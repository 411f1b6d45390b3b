package headchunks

import (
	"bytes"
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

const testRange = 2 * 3600 * 1000

func newBuffer(t testing.TB, chunkRange int64) *Buffer {
	t.Helper()
	disk, err := chunks.NewChunkDiskMapper(nil, t.TempDir(), chunkenc.NewPool(), chunks.DefaultWriteBufferSize, chunks.DefaultWriteQueueSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disk.Close() })
	b, err := New(disk, Options{ChunkRange: chunkRange, OnWriteError: func(err error) { t.Error(err) }})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// head is Prometheus's head with the same chunk range, to hold Buffer to.
func newHead(t testing.TB, chunkRange int64) *tsdb.Head {
	t.Helper()
	opts := tsdb.DefaultHeadOptions()
	opts.ChunkRange = chunkRange
	opts.ChunkDirRoot = t.TempDir()
	h, err := tsdb.NewHead(nil, nil, nil, nil, opts, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return h
}

type sample struct {
	series int
	t      int64
	v      float64
}

// appendBoth appends each sample to the head and, unless the head refuses
// it as out of its bounds (a head rule, not a chunk rule), to b, and fails
// when the two disagree about taking it. It returns the samples given to b.
func appendBoth(t *testing.T, b *Buffer, h *tsdb.Head, samples []sample) (given []sample) {
	t.Helper()
	for _, s := range samples {
		app := h.Appender(context.Background())
		_, herr := app.Append(0, seriesLabels(s.series), s.t, s.v)
		if herr == nil {
			herr = app.Commit()
		} else {
			app.Rollback()
		}
		if errors.Is(herr, storage.ErrOutOfBounds) || errors.Is(herr, storage.ErrTooOldSample) {
			continue
		}
		given = append(given, s)
		if aerr := b.Appendable(uint32(s.series+1), s.t, s.v); kind(aerr) != kind(herr) {
			t.Fatalf("sample %+v: head says %v, Appendable %v", s, herr, aerr)
		}
		if berr := b.Append(uint32(s.series+1), s.t, s.v); kind(berr) != kind(herr) {
			t.Fatalf("sample %+v: head says %v, buffer %v", s, herr, berr)
		}
	}
	return given
}

// kind is the error among those a head's append gives that err is.
func kind(err error) error {
	for _, k := range []error{storage.ErrOutOfOrderSample, storage.ErrDuplicateSampleForTimestamp} {
		if errors.Is(err, k) {
			return k
		}
	}
	return err
}

func seriesLabels(i int) labels.Labels {
	return labels.FromStrings("__name__", "m", "i", strconv.Itoa(i))
}

// sameChunks fails unless every series has the chunks the head has: the
// same time ranges and the same bytes.
func sameChunks(t *testing.T, b *Buffer, h *tsdb.Head, series int) {
	t.Helper()
	ir, err := h.Index()
	if err != nil {
		t.Fatal(err)
	}
	cr, err := h.Chunks()
	if err != nil {
		t.Fatal(err)
	}
	var builder labels.ScratchBuilder
	for i := range series {
		var want []chunks.Meta
		p, err := ir.Postings(context.Background(), "i", strconv.Itoa(i))
		if err != nil {
			t.Fatal(err)
		}
		if p.Next() {
			if err := ir.Series(p.At(), &builder, &want); err != nil {
				t.Fatal(err)
			}
		}
		got := b.Chunks(uint32(i+1), math.MinInt64, math.MaxInt64, nil)
		if len(got) != len(want) {
			t.Fatalf("series %d: %d chunks, head has %d", i, len(got), len(want))
		}
		for j := range want {
			if want[j].MaxTime == math.MaxInt64 {
				// The head gives its open chunk no end; Buffer gives the
				// last sample's, as the chunk it reads holds no later one.
				want[j].MaxTime = got[j].MaxTime
			}
			if got[j].MinTime != want[j].MinTime || got[j].MaxTime != want[j].MaxTime {
				t.Fatalf("series %d chunk %d: [%d, %d], head has [%d, %d]", i, j, got[j].MinTime, got[j].MaxTime, want[j].MinTime, want[j].MaxTime)
			}
			wc, _, err := cr.ChunkOrIterable(want[j])
			if err != nil {
				t.Fatal(err)
			}
			gc, err := b.Chunk(got[j])
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(gc.Bytes(), wc.Bytes()) {
				t.Fatalf("series %d chunk %d: bytes differ from the head's\n got %x\nwant %x", i, j, gc.Bytes(), wc.Bytes())
			}
		}
	}
}

// shapes are the value and timestamp patterns the chunks must encode
// exactly: counters, gauges, random bits, NaNs and stale markers, jittered
// and gapped scrapes, negative timestamps.
func shapes(rng *rand.Rand, series, n int) []sample {
	per := make([][]sample, series)
	for i := range per {
		ts := int64(rng.IntN(1e6)) - 5e5
		v := 0.0
		for range n {
			switch i % 6 {
			case 0:
				ts += 15000
				v += float64(rng.IntN(100))
			case 1:
				ts += 15000 + int64(rng.IntN(200)) - 100
				v = float64(rng.IntN(10000)) / 100
			case 2:
				ts += 1 + int64(rng.IntN(1<<22))
				v = math.Float64frombits(rng.Uint64())
			case 3:
				ts += 10000
				v = [...]float64{math.NaN(), math.Float64frombits(value.StaleNaN), math.Inf(1), 0, math.Copysign(0, -1), 1}[rng.IntN(6)]
			case 4:
				ts += int64(rng.IntN(3)) * 60000 // repeats: duplicates, same-value repeats
				v = float64(rng.IntN(2))
			case 5:
				ts += int64(rng.IntN(40000)) - 10000 // some out of order
				v = rng.NormFloat64()
			}
			per[i] = append(per[i], sample{i, ts, v})
		}
	}
	return interleave(rng, per)
}

// interleave merges the series' samples in a random order, keeping each
// series' own.
func interleave(rng *rand.Rand, per [][]sample) []sample {
	var out []sample
	for {
		left := 0
		for _, p := range per {
			left += len(p)
		}
		if left == 0 {
			return out
		}
		k := rng.IntN(left)
		for i, p := range per {
			if k < len(p) {
				out = append(out, p[0])
				per[i] = p[1:]
				break
			}
			k -= len(p)
		}
	}
}

func TestChunksAreTheHeads(t *testing.T) {
	for _, chunkRange := range []int64{testRange, 60000, 1} {
		t.Run(strconv.FormatInt(chunkRange, 10), func(t *testing.T) {
			b, h := newBuffer(t, chunkRange), newHead(t, chunkRange)
			samples := shapes(rand.New(rand.NewPCG(1, uint64(chunkRange))), 24, 700)
			appendBoth(t, b, h, samples)
			sameChunks(t, b, h, 24)
		})
	}
}

func TestOpenChunkReadsAsListed(t *testing.T) {
	b := newBuffer(t, testRange)
	for i := range 10 {
		if err := b.Append(1, int64(i*1000), float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	metas := b.Chunks(1, 0, math.MaxInt64, nil)
	for i := 10; i < 300; i++ { // more samples, and cuts past the listed chunk
		if err := b.Append(1, int64(i*1000), float64(i)); err != nil {
			t.Fatal(err)
		}
	}
	if len(metas) != 1 {
		t.Fatalf("listed %d chunks, want 1", len(metas))
	}
	chk, err := b.Chunk(metas[0])
	if err != nil {
		t.Fatal(err)
	}
	it := chk.Iterator(nil)
	n := 0
	for ; it.Next() == chunkenc.ValFloat; n++ {
		if ts, v := it.At(); ts != int64(n*1000) || v != float64(n) {
			t.Fatalf("sample %d: (%d, %v)", n, ts, v)
		}
	}
	if n != 10 {
		t.Fatalf("read %d samples of the chunk as listed, want 10", n)
	}
}
