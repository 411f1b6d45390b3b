package convert

import (
	"bytes"
	"testing"

	"github.com/google/pprof/profile"
)

func seedPprof(f *testing.F) []byte {
	fn := &profile.Function{ID: 1, Name: "main"}
	loc := &profile.Location{ID: 1, Line: []profile.Line{{Function: fn}}}
	p := &profile.Profile{
		SampleType: []*profile.ValueType{{Type: "cpu", Unit: "nanoseconds"}},
		Function:   []*profile.Function{fn}, Location: []*profile.Location{loc},
		Sample: []*profile.Sample{{Location: []*profile.Location{loc}, Value: []int64{5}, Label: map[string][]string{"span_id": {"00000000000000aa"}, "k": {"v"}}}},
	}
	var buf bytes.Buffer
	if err := p.WriteUncompressed(&buf); err != nil {
		f.Fatal(err)
	}
	return buf.Bytes()
}

// FuzzPprof: arbitrary bytes must parse or fail cleanly, and whatever parses must
// convert into a batch that passes the store's validation.
func FuzzPprof(f *testing.F) {
	f.Add(seedPprof(f))
	f.Add([]byte{0x1f, 0x8b})
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := ParsePprof(data)
		if err != nil {
			return
		}
		b, err := FromPprof(p, Input{Labels: map[string]string{"service_name": "x"}})
		if err != nil {
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("converted batch invalid: %v", err)
		}
	})
}

func FuzzFolded(f *testing.F) {
	f.Add([]byte("a;b;c 10\na;b 3\n"), "app.cpu", false)
	f.Add([]byte("a;b\n\n;;\n"), "app", true)
	f.Fuzz(func(t *testing.T, data []byte, app string, lines bool) {
		b, err := FromFolded(data, FoldedInput{AppName: app, Lines: lines, SampleRate: 100})
		if err != nil {
			return
		}
		if err := b.Validate(); err != nil {
			t.Fatalf("converted batch invalid: %v", err)
		}
	})
}

func FuzzParams(f *testing.F) {
	f.Add("app{env=prod,region=\"eu west\"}", "1700000000")
	f.Add("{service_name=x}", "1700000000000000000")
	f.Fuzz(func(t *testing.T, name, ts string) {
		app, ls, err := ParseAppName(name)
		if err == nil && ls == nil {
			t.Fatalf("nil labels without error for %q (app %q)", name, app)
		}
		ParseTime(ts)
	})
}
