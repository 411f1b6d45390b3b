package faro

import (
	"os"
	"testing"
	"time"
)

// BenchmarkPayload measures the receiver's own work per /collect body (the
// SDK's typical batch: testdata/payload.json, 5 items and a span): decoding,
// the logfmt lines and the Web Vitals gauges, without the stores.
func BenchmarkPayload(b *testing.B) {
	body, err := os.ReadFile("testdata/payload.json")
	if err != nil {
		b.Fatal(err)
	}
	h := NewHandler(Defaults(), Sinks{}, discard)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		p, err := decode(body)
		if err != nil {
			b.Fatal(err)
		}
		h.lines(&p.payload, 1)
		h.vitals(&p.payload, time.Unix(1, 0))
	}
}
