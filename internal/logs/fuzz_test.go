package logs

import (
	"encoding/binary"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// FuzzDecodeRecord feeds damaged WAL records to replay's decoder: it must refuse
// them with an error, never panic.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(nil, "t1", []Stream{{Labels: labels.FromStrings("app", "a"),
		Entries: []Entry{{Timestamp: 1, Line: "hello", Metadata: labels.FromStrings("trace_id", "abc")}}}}))
	f.Add([]byte{recordVersion, 0xff, 0xff})
	// A tenant length past MaxInt64: read as a signed length it slips past the
	// bounds check and panics.
	f.Add(binary.AppendUvarint([]byte{recordVersion}, math.MaxUint64))
	f.Fuzz(func(t *testing.T, b []byte) {
		tenant, streams, err := decodeRecord(b)
		if err == nil {
			if again := encodeRecord(nil, tenant, streams); len(again) == 0 {
				t.Fatal("re-encoding a decoded record gave nothing")
			}
		}
	})
}

// FuzzDecodeChunk feeds damaged v1 chunk bytes (one zstd frame, as chunks
// were written before their columns had a section of their own) to both
// chunk readers: they must refuse them with an error, never panic.
func FuzzDecodeChunk(f *testing.F) {
	f.Add([]byte{3, 0, 0})
	f.Add([]byte{2, 10, 2, 1, 1, 'a', 'b', 1, 1, 'k', 1, 0, 1, 'v', 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		decodeBoth(t, zenc.EncodeAll(raw, nil))
	})
}

// FuzzDecodeChunkV2 feeds damaged columns and lines of a chunk, each
// compressed as the encoder does, to both chunk readers.
func FuzzDecodeChunkV2(f *testing.F) {
	data, _ := encodeChunk([]Entry{
		{Timestamp: 5, Line: "a line", Metadata: labels.FromStrings("k", "v", "trace_id", "abc")},
		{Timestamp: 3, Line: "b"},
		{Timestamp: 9, Line: "c", Metadata: labels.FromStrings("k", "v", "trace_id", "abc")}})
	var c chunkCols
	if err := c.parse(data); err != nil {
		f.Fatal(err)
	}
	lines, err := c.readLines(true)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(c.raw, lines)
	f.Add([]byte{1, 0, 0, 0, 0, 5}, []byte{})
	f.Fuzz(func(t *testing.T, cols, lines []byte) {
		data := binary.AppendUvarint([]byte{chunkV2}, 0)
		z := zenc.EncodeAll(cols, nil)
		data = binary.AppendUvarint(data[:1], uint64(len(z)))
		data = zenc.EncodeAll(lines, append(data, z...))
		decodeBoth(t, data)
	})
}

// decodeBoth reads data as Select and as a count do; what they accept they
// must agree on.
func decodeBoth(t *testing.T, data []byte) {
	entries, err := decodeChunk(data, math.MinInt64, math.MaxInt64, nil)
	var b sampleBuf
	b.byKey = map[string]int{}
	serr := b.decode(data, math.MinInt64, math.MaxInt64, nil)
	if err != nil || serr != nil {
		return
	}
	n := 0
	for _, g := range b.groups {
		n += len(g.ts)
	}
	if n != len(entries) {
		t.Fatalf("count read %d entries, select %d", n, len(entries))
	}
}
