package faro

import (
	"os"
	"testing"
	"time"
)

// FuzzDecode feeds arbitrary bodies through decoding and line building: an
// error is fine, a panic or an unparseable line is not.
func FuzzDecode(f *testing.F) {
	b, err := os.ReadFile("testdata/payload.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"logs":[{"message":"a\"b=c\n","context":{"k y":"v","n":null,"o":{"a":1}}}]}`))
	f.Add([]byte(`{"measurements":[{"type":"web-vitals","values":{"cls":0.1,"":1e300}}]}`))
	f.Add([]byte(`{"traces":{"resourceSpans":[]}}`))
	f.Add([]byte(`{"exceptions":[{"type":"E","stacktrace":{"frames":[{}]}}],"meta":{"app":{"name":"\u0000"}}}`))
	h := NewHandler(Defaults(), Sinks{}, discard)
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decode(body)
		if err != nil {
			return
		}
		req := h.lines(&p.payload, 1)
		for _, s := range req.Streams {
			for _, e := range s.Entries {
				if e.Line == "" {
					t.Fatalf("empty line from %q", body)
				}
			}
		}
		h.vitals(&p.payload, time.Unix(1, 0))
	})
}
