package logs

import (
	"testing"

	"github.com/prometheus/prometheus/model/labels"
)

// FuzzDecodeRecord feeds damaged WAL records to replay's decoder: it must refuse
// them with an error, never panic.
func FuzzDecodeRecord(f *testing.F) {
	f.Add(encodeRecord(nil, "t1", []Stream{{Labels: labels.FromStrings("app", "a"),
		Entries: []Entry{{Timestamp: 1, Line: "hello", Metadata: labels.FromStrings("trace_id", "abc")}}}}))
	f.Add([]byte{recordVersion, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		tenant, streams, err := decodeRecord(b)
		if err == nil {
			if again := encodeRecord(nil, tenant, streams); len(again) == 0 {
				t.Fatal("re-encoding a decoded record gave nothing")
			}
		}
	})
}

// FuzzDecodeChunk feeds damaged chunk bytes (after zstd) to the chunk decoder.
func FuzzDecodeChunk(f *testing.F) {
	data, _ := encodeChunk([]Entry{{Timestamp: 5, Line: "a line", Metadata: labels.FromStrings("k", "v")}, {Timestamp: 3, Line: "b"}})
	raw, _ := zdec.DecodeAll(data, nil)
	f.Add(raw)
	f.Add([]byte{3, 0, 0})
	f.Fuzz(func(t *testing.T, raw []byte) {
		decodeChunk(zenc.EncodeAll(raw, nil), 0, 1<<62, nil)
	})
}
