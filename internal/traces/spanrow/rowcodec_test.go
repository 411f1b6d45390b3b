package spanrow

import (
	"reflect"
	"testing"
)

func TestRowCodecRoundTrip(t *testing.T) {
	rows, err := FromTraces(sampleTraces(), nil)
	if err != nil {
		t.Fatal(err)
	}
	b := AppendRows(nil, rows)
	got, err := DecodeRows(b)
	if err != nil {
		t.Fatal(err)
	}
	for i := range rows {
		if len(rows[i].Extra) == 0 {
			rows[i].Extra = nil
		}
	}
	if !reflect.DeepEqual(got, rows) {
		t.Fatalf("round trip changed rows\n got %+v\nwant %+v", got, rows)
	}
	// the shared resource blob is stored once
	if n := len(b); n > 2*len(rows[0].Resource)+len(rows[0].Attrs)+len(rows[1].Attrs)+len(rows[0].Extra)+200 {
		t.Fatalf("encoding is %d bytes: shared blobs were repeated", n)
	}
}

func FuzzDecodeRows(f *testing.F) {
	rows, _ := FromTraces(sampleTraces(), nil)
	f.Add(AppendRows(nil, rows))
	f.Add(AppendRows(nil, rows[:1]))
	f.Add([]byte{0, 0})
	f.Add([]byte{1, 0, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := DecodeRows(b)
		if err != nil {
			return
		}
		again, err := DecodeRows(AppendRows(nil, got))
		if err != nil || len(again) != len(got) {
			t.Fatalf("decoded rows do not round trip: %v", err)
		}
		// rows that decode must also rebuild as OTLP or fail cleanly
		_, _ = ToTraces(got)
	})
}
