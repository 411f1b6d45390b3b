package forward

import (
	"reflect"
	"testing"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline/profile"
	"github.com/vispyr/vispyr/internal/receiver/pyroscope/convert"
)

// A batch pushed on is decoded by Vispyr's own push receiver into the same
// profiles: labels, profile type, time, stacks, values, span and trace IDs.
func TestPushRequestRoundTrip(t *testing.T) {
	ls := func(typ string) labels.Labels {
		return labels.FromStrings("__name__", "process_cpu", "service_name", "shop", "region", "eu",
			profile.LabelProfileType, typ)
	}
	in := &profile.Batch{
		Names:  []string{"main", "work", "leaf", "idle"},
		Stacks: [][]uint32{{0, 1, 2}, {0, 3}, {0, 1}},
		Profiles: []profile.Profile{
			{Labels: ls("process_cpu:cpu:nanoseconds:cpu:nanoseconds"), TimeNanos: 1_700_000_000_000_000_000, Samples: []profile.Sample{
				{Stack: 0, Value: 30, SpanID: 0xabc, TraceID: "0102030405060708090a0b0c0d0e0f10"},
				{Stack: 1, Value: 5},
			}},
			{Labels: ls("process_cpu:samples:count::"), TimeNanos: 1_700_000_000_000_000_001, Samples: []profile.Sample{
				{Stack: 2, Value: 7},
			}},
		},
	}
	req, err := pushRequest(in)
	if err != nil {
		t.Fatal(err)
	}
	if len(req.Series) != len(in.Profiles) {
		t.Fatalf("%d series for %d profiles", len(req.Series), len(in.Profiles))
	}
	for i, s := range req.Series {
		m := map[string]string{}
		name := ""
		for _, l := range s.Labels {
			if l.Name == "__name__" {
				name = l.Value
				continue
			}
			m[l.Name] = l.Value
		}
		if _, ok := m[profile.LabelProfileType]; ok {
			t.Errorf("series %d sends %s, which only the server may set", i, profile.LabelProfileType)
		}
		p, err := convert.ParsePprof(s.Samples[0].RawProfile)
		if err != nil {
			t.Fatalf("series %d: %v", i, err)
		}
		got, err := convert.FromPprof(p, convert.Input{Labels: m, Name: name})
		if err != nil {
			t.Fatalf("series %d: %v", i, err)
		}
		want := in.Profiles[i]
		if len(got.Profiles) != 1 || !labels.Equal(got.Profiles[0].Labels, want.Labels) || got.Profiles[0].TimeNanos != want.TimeNanos {
			t.Fatalf("series %d decodes as %+v, want %+v", i, got.Profiles, want)
		}
		for j, s := range got.Profiles[0].Samples {
			w := want.Samples[j]
			gotStack, wantStack := names(got, s.Stack), names(in, w.Stack)
			if !reflect.DeepEqual(gotStack, wantStack) || s.Value != w.Value || s.SpanID != w.SpanID || s.TraceID != w.TraceID {
				t.Errorf("series %d sample %d: %v %d span %x trace %q, want %v %d span %x trace %q",
					i, j, gotStack, s.Value, s.SpanID, s.TraceID, wantStack, w.Value, w.SpanID, w.TraceID)
			}
		}
	}
}

func names(b *profile.Batch, stack uint32) []string {
	var out []string
	for _, n := range b.Stacks[stack] {
		out = append(out, b.Names[n])
	}
	return out
}
