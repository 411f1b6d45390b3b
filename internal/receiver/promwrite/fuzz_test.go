package promwrite

import (
	"bytes"
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
	p.mine = newHandler(p.mineDB, defaultOpts(), discard, prometheus.NewRegistry())
	p.stock = newStock(p.stockDB, defaultOpts())
	f.Cleanup(func() {
		_ = p.mineDB.Close()
		_ = p.stockDB.Close()
		_ = os.RemoveAll(dir)
	})
	return p
}
