package headchunks

import (
	"math"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
)

// readAll is every sample of series ref in [mint, maxt] as Chunks and Chunk
// give them.
func readAll(t testing.TB, b *Buffer, ref uint32, mint, maxt int64) (ts []int64) {
	for _, m := range b.Chunks(ref, mint, maxt, nil) {
		chk, err := b.Chunk(m)
		if err != nil {
			t.Fatal(err)
		}
		it := chk.Iterator(nil)
		for it.Next() == chunkenc.ValFloat {
			ts = append(ts, it.AtT())
		}
		if it.Err() != nil {
			t.Fatal(it.Err())
		}
	}
	return ts
}

func TestTruncateDropsOldChunksAndFiles(t *testing.T) {
	dir := t.TempDir()
	disk, err := chunks.NewChunkDiskMapper(nil, dir, chunkenc.NewPool(), chunks.DefaultWriteBufferSize, chunks.DefaultWriteQueueSize)
	if err != nil {
		t.Fatal(err)
	}
	defer disk.Close()
	b, err := New(disk, Options{ChunkRange: testRange, OnWriteError: func(err error) { t.Error(err) }})
	if err != nil {
		t.Fatal(err)
	}
	appendUntil := func(from, to int64, refs ...uint32) {
		for ts := from; ts < to; ts += 15000 {
			for _, ref := range refs {
				if err := b.Append(ref, ts, float64(ts)); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	appendUntil(0, testRange, 1, 2)
	disk.CutNewFile()
	appendUntil(testRange, 2*testRange, 1) // series 2 stops at the first range's end
	before := readAll(t, b, 1, math.MinInt64, math.MaxInt64)
	if _, err := os.Stat(filepath.Join(dir, "000001")); err != nil {
		t.Fatalf("the first head chunk file: %v", err)
	}

	empty, err := b.Truncate(testRange)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(empty, []uint32{2}) {
		t.Fatalf("series left empty: %v, want [2]", empty)
	}
	after := readAll(t, b, 1, math.MinInt64, math.MaxInt64)
	if !slices.Equal(after, before[len(before)-len(after):]) || after[0] != testRange {
		t.Fatalf("series 1 keeps %d samples from %d; want the %d from %d", len(after), after[0], testRange/15000, testRange)
	}
	if got := readAll(t, b, 2, math.MinInt64, math.MaxInt64); len(got) != 0 {
		t.Fatalf("series 2 still reads %d samples", len(got))
	}
	if _, err := os.Stat(filepath.Join(dir, "000001")); !os.IsNotExist(err) {
		t.Fatalf("the first head chunk file, all of it before the truncation, is still there (%v)", err)
	}
	if err := b.Append(1, 2*testRange, 1); err != nil { // appends go on after truncation
		t.Fatal(err)
	}
}

// TestReadsWhileAppending has readers list and read series while writers
// append, cut and grow their chunks (run it with -race): every read is a
// prefix of what was appended, in order.
func TestReadsWhileAppending(t *testing.T) {
	b := newBuffer(t, 60000)
	const series, samples = 8, 3000
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range samples {
				for ref := uint32(1 + w); ref <= series; ref += 2 {
					if err := b.Append(ref, int64(i*1000), float64(i)); err != nil {
						t.Error(err)
						return
					}
				}
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for reads := 0; ; reads++ {
		select {
		case <-done:
			if got := readAll(t, b, series, math.MinInt64, math.MaxInt64); len(got) != samples {
				t.Fatalf("read %d samples after the writers finished, want %d", len(got), samples)
			}
			return
		default:
		}
		ts := readAll(t, b, uint32(1+reads%series), math.MinInt64, math.MaxInt64)
		for i, x := range ts {
			if x != int64(i*1000) {
				t.Fatalf("read %d: sample %d at %d, want %d", reads, i, x, i*1000)
			}
		}
	}
}

// TestCompactFreesSlabsSeriesGrewOutOf has many series grow in step, as a
// head's series do after a restart, and checks that Compact gives back the
// slabs of the small slots they left, and that every series reads and
// appends as before.
func TestCompactFreesSlabsSeriesGrewOutOf(t *testing.T) {
	b := newBuffer(t, testRange)
	const series = 20000
	for r := range 8 {
		for ref := uint32(1); ref <= series; ref++ {
			if err := b.Append(ref, int64(r*15000), float64(r)*float64(ref)*1.1); err != nil {
				t.Fatal(err)
			}
		}
	}
	before := make([][]int64, series+1)
	for ref := uint32(1); ref <= series; ref++ {
		before[ref] = readAll(t, b, ref, math.MinInt64, math.MaxInt64)
	}
	size := b.Bytes()
	if freed := b.Compact(); freed < size/3 || b.Bytes() != size-freed {
		t.Fatalf("Compact freed %d of %d bytes, Bytes now %d", freed, size, b.Bytes())
	}
	if again := b.Compact(); again != 0 {
		t.Fatalf("a second Compact freed %d bytes more", again)
	}
	for ref := uint32(1); ref <= series; ref++ {
		if err := b.Append(ref, 8*15000, 1); err != nil {
			t.Fatal(err)
		}
		got := readAll(t, b, ref, math.MinInt64, math.MaxInt64)
		if !slices.Equal(got[:8], before[ref]) || len(got) != 9 {
			t.Fatalf("series %d reads %v after Compact, had %v", ref, got, before[ref])
		}
	}
}
