package profiles

import (
	"bytes"
	"testing"
	"time"
)

// FuzzDecodeBatch checks the WAL record decoder on corrupt input: no panic, and
// whatever decodes re-encodes to the same bytes.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(EncodeBatch(nil, testBatch("svc", time.Unix(1700000000, 0), map[string]int64{"a;b": 3, "a": 1}, 42)))
	f.Add([]byte{1, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		b, err := DecodeBatch(data)
		if err != nil {
			return
		}
		if again := EncodeBatch(nil, b); !bytes.Equal(again, data) {
			// Labels are sorted on decode, so only sorted input round-trips exactly;
			// it must still decode to the same batch.
			b2, err := DecodeBatch(again)
			if err != nil || b2.NumSamples() != b.NumSamples() {
				t.Fatalf("re-encoded batch does not decode the same: %v", err)
			}
		}
	})
}

// FuzzDecodeBlock checks the block section decoders: corrupt blocks give errors,
// not panics, and decoded data can be merged without indexing out of range.
func FuzzDecodeBlock(f *testing.F) {
	tb := newTable()
	tb.append(testBatch("svc", time.Unix(1700000000, 0), map[string]int64{"a;b": 3, "a;c": 1}, 7))
	f.Add(encodeSymbols(tb), encodeProfiles(tb.series[0].profiles))
	f.Fuzz(func(t *testing.T, syms, profs []byte) {
		tb, err := decodeSymbols(syms)
		if err != nil {
			return
		}
		ps, err := decodeProfiles(profs, len(tb.nodes), len(tb.names))
		if err != nil {
			return
		}
		m := newTableMerger(NewTree(), tb)
		for _, p := range ps {
			for _, x := range p.samples {
				m.add(x.node, x.value)
			}
		}
		m.flush()
		m.tree.FlameGraph(4)
	})
}
