package promwrite

import (
	"bytes"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/tsdb"
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
		var r request
		err := r.decode(data, v2)
		if err == nil && !v2 {
			for i := range r.series {
				if _, err = r.labelsOf(&r.series[i]); err != nil {
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

func renderV1(r *request) string {
	var b bytes.Buffer
	for _, s := range r.series {
		var ls []prompb.Label
		raw, _ := r.labelsOf(&s)
		for _, l := range raw {
			ls = append(ls, prompb.Label{Name: l.name, Value: l.value})
		}
		fmt.Fprintf(&b, "series %s samples", renderLabelsV1(ls))
		for _, smp := range r.samples[s.smp:s.smpEnd] {
			fmt.Fprintf(&b, " %d/%x", smp.t, math.Float64bits(smp.v))
		}
		for i := s.ex; i < s.exEnd; i++ {
			fmt.Fprintf(&b, " ex %s", marshalled(&r.exs1[i]))
		}
		for i := s.hist; i < s.histEnd; i++ {
			fmt.Fprintf(&b, " hist %s", marshalled(&r.hists1[i]))
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

func renderV2(r *request) string {
	var b bytes.Buffer
	fmt.Fprintf(&b, "symbols %q\n", r.symbols)
	for _, s := range r.series {
		fmt.Fprintf(&b, "series %v samples", r.refs[s.lbl:s.lblEnd])
		for _, smp := range r.samples[s.smp:s.smpEnd] {
			fmt.Fprintf(&b, " %d/%d/%x", smp.st, smp.t, math.Float64bits(smp.v))
		}
		for i := s.ex; i < s.exEnd; i++ {
			fmt.Fprintf(&b, " ex %s", marshalled(&r.exs2[i]))
		}
		for i := s.hist; i < s.histEnd; i++ {
			fmt.Fprintf(&b, " hist %s", marshalled(&r.hists2[i]))
		}
		fmt.Fprintf(&b, " meta %d/%d/%d\n", s.meta.Type, s.meta.HelpRef, s.meta.UnitRef)
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
	var r request
	if err := r.decode(raw, false); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(20, func() {
		_ = r.decode(raw, false)
		for i := range r.series {
			_, _ = r.labelsOf(&r.series[i])
		}
	}); n != 0 {
		t.Fatalf("decoding allocates %v times per request", n)
	}
}

// FuzzHandlerParity sends the same fuzzed request bodies to our handler and to
// the stock one, each over a TSDB kept for the whole fuzzing run: every answer
// and everything stored must be the same.
func FuzzHandlerParity(f *testing.F) {
	for _, seed := range decodeSeeds(f) {
		f.Add(seed, false)
		f.Add(seed, true)
	}
	now := prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{Labels: lbls("__name__", "up", "job", "x"), Samples: samples(base)}}}
	raw, _ := now.Marshal()
	f.Add(raw, false)
	// One pair for the whole run, so that inputs meet the data of earlier ones.
	p := newFuzzPair(f)
	f.Fuzz(func(t *testing.T, data []byte, v2 bool) {
		ct := ctV1
		if v2 {
			ct = ctV2
		}
		body := snappy.Encode(nil, data)
		mine, stock := post(p.mine, body, ct, "snappy"), post(p.stock, body, ct, "snappy")
		if mine != stock {
			t.Fatalf("answers differ: vispyr %+v, stock %+v", mine, stock)
		}
		if a, b := dump(t, p.mineDB), dump(t, p.stockDB); a != b {
			t.Fatalf("stored data differs:\nvispyr:\n%s\nstock:\n%s", a, b)
		}
	})
}

func newFuzzPair(f *testing.F) *pair {
	dir, err := os.MkdirTemp("", "promwrite-fuzz-")
	if err != nil {
		f.Fatal(err)
	}
	open := func(name string) *tsdb.DB {
		opts := tsdb.DefaultOptions()
		opts.EnableExemplarStorage, opts.MaxExemplars = true, 10000
		db, err := tsdb.Open(filepath.Join(dir, name), discard, nil, opts, nil)
		if err != nil {
			f.Fatal(err)
		}
		return db
	}
	p := &pair{mineDB: open("mine"), stockDB: open("stock")}
	p.mine = NewHandler(p.mineDB, defaultOpts(), discard, prometheus.NewRegistry())
	p.stock = newStock(p.stockDB, defaultOpts())
	f.Cleanup(func() {
		_ = p.mineDB.Close()
		_ = p.stockDB.Close()
		_ = os.RemoveAll(dir)
	})
	return p
}
