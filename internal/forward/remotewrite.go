package forward

import (
	"context"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
)

// Remote-write request headers (the specification's).
var (
	rwHeadersV1 = map[string]string{
		"Content-Type":                      "application/x-protobuf",
		"Content-Encoding":                  "snappy",
		"X-Prometheus-Remote-Write-Version": "0.1.0",
	}
	rwHeadersV2 = map[string]string{
		"Content-Type":                      "application/x-protobuf;proto=io.prometheus.write.v2.Request",
		"Content-Encoding":                  "snappy",
		"X-Prometheus-Remote-Write-Version": "2.0.0",
	}
)

// rwCodec queues v1 WriteRequests (snappy) and sends each series to one
// shard, keyed by its labels, so a series' samples stay in order.
type rwCodec struct{ v2 bool }

func (rwCodec) split(body []byte, emit func(uint64, prompb.TimeSeries, int, int64)) error {
	raw, err := snappy.Decode(nil, body)
	if err != nil {
		return fmt.Errorf("decode snappy: %w", err)
	}
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		return fmt.Errorf("decode write request: %w", err)
	}
	for _, ts := range req.Timeseries {
		var newest int64
		if n := len(ts.Samples); n > 0 {
			newest = ts.Samples[n-1].Timestamp
		}
		if n := len(ts.Histograms); n > 0 {
			newest = max(newest, ts.Histograms[n-1].Timestamp)
		}
		emit(labelsKey(ts.Labels), ts, len(ts.Samples)+len(ts.Histograms), newest)
	}
	return nil
}

func labelsKey(ls []prompb.Label) uint64 {
	d := xxhash.New()
	for _, l := range ls {
		_, _ = d.WriteString(l.Name)
		_, _ = d.Write([]byte{0xff})
		_, _ = d.WriteString(l.Value)
		_, _ = d.Write([]byte{0xff})
	}
	return d.Sum64()
}

func (c rwCodec) encode(series []prompb.TimeSeries) ([]byte, error) {
	var raw []byte
	var err error
	if c.v2 {
		raw, err = toV2(series).Marshal()
	} else {
		raw, err = (&prompb.WriteRequest{Timeseries: series}).Marshal()
	}
	if err != nil {
		return nil, fmt.Errorf("marshal write request: %w", err)
	}
	return snappy.Encode(nil, raw), nil
}

// toV2 re-encodes v1 series as a remote-write 2.0 request with its symbols table.
func toV2(series []prompb.TimeSeries) *writev2.Request {
	st := writev2.NewSymbolTable()
	out := make([]writev2.TimeSeries, len(series))
	for i, ts := range series {
		o := &out[i]
		o.LabelsRefs = symbolize(&st, ts.Labels, nil)
		o.Samples = make([]writev2.Sample, len(ts.Samples))
		for j, s := range ts.Samples {
			o.Samples[j] = writev2.Sample{Value: s.Value, Timestamp: s.Timestamp}
		}
		for _, h := range ts.Histograms {
			if h.IsFloatHistogram() {
				o.Histograms = append(o.Histograms, writev2.FromFloatHistogram(0, h.Timestamp, h.ToFloatHistogram()))
			} else {
				o.Histograms = append(o.Histograms, writev2.FromIntHistogram(0, h.Timestamp, h.ToIntHistogram()))
			}
		}
		for _, e := range ts.Exemplars {
			o.Exemplars = append(o.Exemplars, writev2.Exemplar{
				LabelsRefs: symbolize(&st, e.Labels, nil), Value: e.Value, Timestamp: e.Timestamp,
			})
		}
	}
	return &writev2.Request{Symbols: st.Symbols(), Timeseries: out}
}

func symbolize(st *writev2.SymbolsTable, ls []prompb.Label, buf []uint32) []uint32 {
	for _, l := range ls {
		buf = append(buf, st.Symbolize(l.Name), st.Symbolize(l.Value))
	}
	return buf
}

// Metrics forwards samples by remote write to every metrics destination. It is
// a storage.Appendable (the generator writes to it) and storage.AppendableV2
// (the remote-write and OTLP receivers do): Commit returns once the samples
// are fsync'd in every destination's queue.
type Metrics struct {
	queues []Queue
	// dropFull counts samples whose copy a full queue refused while the
	// local store kept them (serve's tee).
	dropFull func(items int)
}

var (
	_ storage.Appendable   = (*Metrics)(nil)
	_ storage.AppendableV2 = (*Metrics)(nil)
)

// Appender returns a v1 appender; ctx carries the tenant.
func (m *Metrics) Appender(ctx context.Context) storage.Appender {
	return &appenderV1{txn: m.newTxn(ctx)}
}

// AppenderV2 returns a v2 appender (also a storage.ExemplarAppenderV2).
func (m *Metrics) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return &appenderV2{txn: m.newTxn(ctx)}
}

func (m *Metrics) newTxn(ctx context.Context) *txn {
	return &txn{m: m, tenant: tenantOf(ctx), index: map[uint64]int{}}
}

// txn collects one transaction's samples by series.
type txn struct {
	m      *Metrics
	tenant string
	series []prompb.TimeSeries
	index  map[uint64]int // labels hash → series; collisions compared
}

func (t *txn) get(ls labels.Labels) (*prompb.TimeSeries, storage.SeriesRef) {
	h := ls.Hash()
	if i, ok := t.index[h]; ok && labelsEqual(t.series[i].Labels, ls) {
		return &t.series[i], storage.SeriesRef(h)
	}
	t.series = append(t.series, prompb.TimeSeries{Labels: prompb.FromLabels(ls, nil)})
	t.index[h] = len(t.series) - 1
	return &t.series[len(t.series)-1], storage.SeriesRef(h)
}

func labelsEqual(pl []prompb.Label, ls labels.Labels) bool {
	if len(pl) != ls.Len() {
		return false
	}
	i, eq := 0, true
	ls.Range(func(l labels.Label) {
		eq = eq && pl[i].Name == l.Name && pl[i].Value == l.Value
		i++
	})
	return eq
}

func (t *txn) float(ls labels.Labels, ts int64, v float64) storage.SeriesRef {
	s, ref := t.get(ls)
	s.Samples = append(s.Samples, prompb.Sample{Timestamp: ts, Value: v})
	return ref
}

func (t *txn) hist(ls labels.Labels, ts int64, h *histogram.Histogram, fh *histogram.FloatHistogram) storage.SeriesRef {
	s, ref := t.get(ls)
	if fh != nil {
		s.Histograms = append(s.Histograms, prompb.FromFloatHistogram(ts, fh))
	} else {
		s.Histograms = append(s.Histograms, prompb.FromIntHistogram(ts, h))
	}
	return ref
}

func (t *txn) exemplars(ls labels.Labels, es ...exemplar.Exemplar) storage.SeriesRef {
	s, ref := t.get(ls)
	for _, e := range es {
		s.Exemplars = append(s.Exemplars, prompb.Exemplar{Labels: prompb.FromLabels(e.Labels, nil), Value: e.Value, Timestamp: e.Ts})
	}
	return ref
}

// Commit writes the transaction to every destination's queue. A full queue
// refuses the whole transaction before anything is written, so that a retry
// does not duplicate it elsewhere.
func (t *txn) Commit() error {
	defer t.Rollback()
	if len(t.series) == 0 {
		return nil
	}
	for _, q := range t.m.queues {
		if q.Full() {
			return overloaded(ErrQueueFull)
		}
	}
	raw, err := (&prompb.WriteRequest{Timeseries: t.series}).Marshal()
	if err != nil {
		return fmt.Errorf("marshal forwarded samples: %w", err)
	}
	return appendAll(t.m.queues, t.tenant, snappy.Encode(nil, raw))
}

func (t *txn) Rollback() error {
	t.series = t.series[:0]
	clear(t.index)
	return nil
}

type appenderV1 struct{ *txn }

func (a *appenderV1) Append(_ storage.SeriesRef, ls labels.Labels, ts int64, v float64) (storage.SeriesRef, error) {
	return a.float(ls, ts, v), nil
}

func (a *appenderV1) SetOptions(*storage.AppendOptions) {}

func (a *appenderV1) AppendExemplar(_ storage.SeriesRef, ls labels.Labels, e exemplar.Exemplar) (storage.SeriesRef, error) {
	return a.exemplars(ls, e), nil
}

func (a *appenderV1) AppendHistogram(_ storage.SeriesRef, ls labels.Labels, ts int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return a.hist(ls, ts, h, fh), nil
}

// Start-timestamp zero samples are the receiving side's business.
func (a *appenderV1) AppendHistogramSTZeroSample(_ storage.SeriesRef, ls labels.Labels, _, _ int64, _ *histogram.Histogram, _ *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return storage.SeriesRef(ls.Hash()), nil
}

func (a *appenderV1) AppendSTZeroSample(_ storage.SeriesRef, ls labels.Labels, _, _ int64) (storage.SeriesRef, error) {
	return storage.SeriesRef(ls.Hash()), nil
}

func (a *appenderV1) UpdateMetadata(_ storage.SeriesRef, ls labels.Labels, _ metadata.Metadata) (storage.SeriesRef, error) {
	return storage.SeriesRef(ls.Hash()), nil
}

type appenderV2 struct{ *txn }

var _ storage.ExemplarAppenderV2 = (*appenderV2)(nil)

func (a *appenderV2) Append(_ storage.SeriesRef, ls labels.Labels, _, ts int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	var ref storage.SeriesRef
	if h != nil || fh != nil {
		ref = a.hist(ls, ts, h, fh)
	} else {
		ref = a.float(ls, ts, v)
	}
	if len(opts.Exemplars) > 0 {
		a.exemplars(ls, opts.Exemplars...)
	}
	return ref, nil
}

func (a *appenderV2) AppendExemplars(_ storage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (storage.SeriesRef, error) {
	return a.exemplars(ls, slices.Clone(es)...), nil
}
