package remotewrite

import (
	"bytes"
	"fmt"
	"math"
	"testing"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// FuzzDecode checks the hand-written decoder against the generated one the
// stock handler uses: it never panics, refuses exactly the inputs gogo refuses,
// and decodes the others to the same series, samples, exemplars and histograms.
func FuzzDecode(f *testing.F) {
	for _, seed := range decodeSeeds(f) {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	f.Fuzz(func(t *testing.T, data []byte, v2 bool) {
		var r Request
		err := r.Decode(data, v2)
		if err == nil && !v2 {
			for i := range r.Len() {
				if _, err = r.Labels(i); err != nil {
					break
				}
			}
		}
		if v2 {
			var want writev2.Request
			wantErr := want.Unmarshal(data)
			if (err == nil) != (wantErr == nil) {
				t.Fatalf("v2: decode error %v, gogo error %v", err, wantErr)
			}
			if err == nil {
				if got, exp := renderV2(&r), renderGogoV2(&want); got != exp {
					t.Fatalf("v2 decodes differ:\nours: %s\ngogo: %s", got, exp)
				}
			}
			return
		}
		var want prompb.WriteRequest
		wantErr := want.Unmarshal(data)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("v1: decode error %v, gogo error %v", err, wantErr)
		}
		if err == nil {
			if got, exp := renderV1(&r), renderGogoV1(&want); got != exp {
				t.Fatalf("v1 decodes differ:\nours: %s\ngogo: %s", got, exp)
			}
			// The metadata kept for a forwarder is gogo's metadata.
			var meta prompb.WriteRequest
			if err := meta.Unmarshal(r.MetadataV1()); err != nil {
				t.Fatalf("v1 metadata fields do not decode: %v", err)
			}
			if got, exp := fmt.Sprint(meta.Metadata), fmt.Sprint(want.Metadata); got != exp {
				t.Fatalf("v1 metadata differs:\nours: %s\ngogo: %s", got, exp)
			}
		}
	})
}

func decodeSeeds(tb testing.TB) [][]byte {
	v1 := &prompb.WriteRequest{
		Timeseries: []prompb.TimeSeries{
			{Labels: lbls("__name__", "up", "job", "a"), Samples: samples(1, 2),
				Exemplars:  []prompb.Exemplar{{Labels: lbls("trace_id", "x"), Value: 1, Timestamp: 2}},
				Histograms: []prompb.Histogram{prompb.FromIntHistogram(5, testHistogram(1))}},
			{Labels: lbls("__name__", "f"), Histograms: []prompb.Histogram{prompb.FromFloatHistogram(5, testHistogram(2).ToFloat(nil))}},
		},
		Metadata: []prompb.MetricMetadata{{Type: prompb.MetricMetadata_COUNTER, MetricFamilyName: "up", Help: "h"}},
	}
	raw1, err := v1.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	b := newV2()
	ex := b.exemplar("trace_id", "t")
	b.series(labels.FromStrings("__name__", "a", "b", "c"), writev2.TimeSeries{
		Samples:    []writev2.Sample{{Value: 1, Timestamp: 2, StartTimestamp: 1}},
		Exemplars:  []writev2.Exemplar{ex},
		Histograms: []writev2.Histogram{writev2.FromIntHistogram(1, 2, testHistogram(0))},
		Metadata:   writev2.Metadata{Type: writev2.Metadata_METRIC_TYPE_GAUGE, HelpRef: 1},
	})
	b.req.Symbols = b.syms.Symbols()
	raw2, err := b.req.Marshal()
	if err != nil {
		tb.Fatal(err)
	}
	return [][]byte{
		raw1, raw2, nil, {0x0a, 0x00},
		{0x0a, 0x04, 0x0a, 0x02, 0x0a, 0x00},                         // a series with one empty label
		{0x0b, 0x0c},                                                 // an empty group
		{0x2a, 0x06, 0x0a, 0x04, 0x01, 0x02, 0x03, 0x04},             // v2 packed refs
		{0x2a, 0x04, 0x08, 0x01, 0x08, 0x02},                         // v2 unpacked refs
		{0x0a, 0x0b, 0x12, 0x09, 0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f}, // truncated sample
		bytes.Repeat([]byte{0xff}, 11),
	}
}

func renderLabelsV1(ls []prompb.Label) string {
	var b bytes.Buffer
	for _, l := range ls {
		fmt.Fprintf(&b, "%q=%q,", l.Name, l.Value)
	}
	return b.String()
}

func marshalled(m interface{ Marshal() ([]byte, error) }) string {
	raw, err := m.Marshal()
	if err != nil {
		return "marshal error: " + err.Error()
	}
	return fmt.Sprintf("%x", raw)
}

func renderV1(r *Request) string {
	var b bytes.Buffer
	for i := range r.Len() {
		var ls []prompb.Label
		raw, _ := r.Labels(i)
		for _, l := range raw {
			ls = append(ls, prompb.Label{Name: l.Name, Value: l.Value})
		}
		fmt.Fprintf(&b, "series %s samples", renderLabelsV1(ls))
		for _, smp := range r.Samples(i) {
			fmt.Fprintf(&b, " %d/%x", smp.T, math.Float64bits(smp.V))
		}
		for _, ex := range r.ExemplarsV1(i) {
			fmt.Fprintf(&b, " ex %s", marshalled(&ex))
		}
		for _, h := range r.HistogramsV1(i) {
			fmt.Fprintf(&b, " hist %s", marshalled(&h))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func renderGogoV1(req *prompb.WriteRequest) string {
	var b bytes.Buffer
	for _, ts := range req.Timeseries {
		fmt.Fprintf(&b, "series %s samples", renderLabelsV1(ts.Labels))
		for _, smp := range ts.Samples {
			fmt.Fprintf(&b, " %d/%x", smp.Timestamp, math.Float64bits(smp.Value))
		}
		for i := range ts.Exemplars {
			fmt.Fprintf(&b, " ex %s", marshalled(&ts.Exemplars[i]))
		}
		for i := range ts.Histograms {
			fmt.Fprintf(&b, " hist %s", marshalled(&ts.Histograms[i]))
		}
		b.WriteString("\n")
	}
	return b.String()
}

func renderV2(r *Request) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "symbols %q\n", r.Symbols())
	for i := range r.Len() {
		fmt.Fprintf(&b, "series %v samples", r.LabelRefs(i))
		for _, smp := range r.Samples(i) {
			fmt.Fprintf(&b, " %d/%d/%x", smp.ST, smp.T, math.Float64bits(smp.V))
		}
		for _, ex := range r.ExemplarsV2(i) {
			fmt.Fprintf(&b, " ex %s", marshalled(&ex))
		}
		for _, h := range r.HistogramsV2(i) {
			fmt.Fprintf(&b, " hist %s", marshalled(&h))
		}
		m := r.Metadata(i)
		fmt.Fprintf(&b, " meta %d/%d/%d\n", m.Type, m.HelpRef, m.UnitRef)
	}
	return b.String()
}

func renderGogoV2(req *writev2.Request) string {
	var b bytes.Buffer
	syms := req.Symbols
	if syms == nil {
		syms = []string{}
	}
	fmt.Fprintf(&b, "symbols %q\n", syms)
	for _, ts := range req.Timeseries {
		refs := ts.LabelsRefs
		if refs == nil {
			refs = []uint32{}
		}
		fmt.Fprintf(&b, "series %v samples", refs)
		for _, smp := range ts.Samples {
			fmt.Fprintf(&b, " %d/%d/%x", smp.StartTimestamp, smp.Timestamp, math.Float64bits(smp.Value))
		}
		for i := range ts.Exemplars {
			fmt.Fprintf(&b, " ex %s", marshalled(&ts.Exemplars[i]))
		}
		for i := range ts.Histograms {
			fmt.Fprintf(&b, " hist %s", marshalled(&ts.Histograms[i]))
		}
		fmt.Fprintf(&b, " meta %d/%d/%d\n", ts.Metadata.Type, ts.Metadata.HelpRef, ts.Metadata.UnitRef)
	}
	return b.String()
}

// TestDecodeAllocs checks a request of a known shape decodes without
// allocating once the buffers are warm.
func TestDecodeAllocs(t *testing.T) {
	req := &prompb.WriteRequest{}
	for i := 0; i < 100; i++ {
		req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: lbls("__name__", "m", "i", fmt.Sprint(i)), Samples: samples(int64(i))})
	}
	raw, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var r Request
	if err := r.Decode(raw, false); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() {
		_ = r.Decode(raw, false)
		for i := range r.Len() {
			_, _ = r.Labels(i)
		}
	}); n != 0 {
		t.Fatalf("decoding allocates %v times per request", n)
	}
}

func lbls(kv ...string) []prompb.Label {
	var out []prompb.Label
	for i := 0; i < len(kv); i += 2 {
		out = append(out, prompb.Label{Name: kv[i], Value: kv[i+1]})
	}
	return out
}

func samples(ts ...int64) []prompb.Sample {
	var out []prompb.Sample
	for _, t := range ts {
		out = append(out, prompb.Sample{Timestamp: t, Value: float64(t%1000) / 10})
	}
	return out
}

func testHistogram(i int) *histogram.Histogram {
	return &histogram.Histogram{
		Schema: 1, Count: uint64(7 + i), Sum: 18.4 * float64(i+1), ZeroThreshold: 0.001, ZeroCount: 2,
		PositiveSpans:   []histogram.Span{{Offset: 0, Length: 2}, {Offset: 1, Length: 2}},
		PositiveBuckets: []int64{1, 1, -1, int64(i)},
	}
}

type v2Builder struct {
	syms writev2.SymbolsTable
	req  writev2.Request
}

func newV2() *v2Builder { return &v2Builder{syms: writev2.NewSymbolTable()} }

func (b *v2Builder) series(ls labels.Labels, ts writev2.TimeSeries) {
	ts.LabelsRefs = b.syms.SymbolizeLabels(ls, nil)
	b.req.Timeseries = append(b.req.Timeseries, ts)
}

func (b *v2Builder) exemplar(kv ...string) writev2.Exemplar {
	return writev2.Exemplar{LabelsRefs: b.syms.SymbolizeLabels(labels.FromStrings(kv...), nil)}
}
