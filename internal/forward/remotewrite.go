package forward

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
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

// rwCodec reads queue records holding snappy-compressed v1 WriteRequests
// and sends each series to one shard, keyed by its labels, so a series'
// samples stay in order. A unit is one series as it is on the wire (its
// field tag, length and bytes): a batch of them concatenated is a v1
// WriteRequest, so forwarding v1 neither decodes nor re-encodes a sample.
type rwCodec struct{ v2 bool }

func (rwCodec) split(body []byte, emit func(uint64, []byte, int, int64)) error {
	raw, err := s2.Decode(nil, body)
	if err != nil {
		return fmt.Errorf("decode snappy: %w", err)
	}
	err = remotewrite.SplitV1(raw, func(s remotewrite.SeriesV1) { emit(s.Hash, s.Field, s.Items, s.Newest) })
	if err != nil {
		return fmt.Errorf("decode write request: %w", err)
	}
	return nil
}

// rawPool holds the buffers that batches are concatenated in before snappy.
var rawPool = sync.Pool{New: func() any { return new([]byte) }}

func (c rwCodec) encode(series [][]byte) ([]byte, error) {
	bp := rawPool.Get().(*[]byte)
	defer rawPool.Put(bp)
	raw := (*bp)[:0]
	for _, s := range series {
		raw = append(raw, s...)
	}
	*bp = raw
	if c.v2 {
		var req prompb.WriteRequest
		if err := req.Unmarshal(raw); err != nil {
			return nil, fmt.Errorf("decode queued series: %w", err)
		}
		var err error
		if raw, err = toV2(req.Timeseries).Marshal(); err != nil {
			return nil, fmt.Errorf("marshal write request: %w", err)
		}
	}
	return s2.EncodeSnappy(nil, raw), nil
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
	return appendAll(t.m.queues, t.tenant, s2.EncodeSnappy(nil, raw))
}

// AppendRawV1 queues a v1 WriteRequest's protobuf body as it came (the
// remote-write receiver checked it: metrics.RawV1Appendable) in every
// destination's queue, as the client compressed it when known, else
// compressed once; it returns once that is fsync'd.
func (m *Metrics) AppendRawV1(ctx context.Context, raw, compressed []byte) error {
	for _, q := range m.queues {
		if q.Full() {
			return overloaded(ErrQueueFull)
		}
	}
	bp := recPool.Get().(*[]byte)
	defer recPool.Put(bp)
	rec := encodeRecord(*bp, tenantOf(ctx), compressed)
	if compressed == nil {
		n := len(rec)
		rec = slices.Grow(rec, s2.MaxEncodedLen(len(raw)))
		rec = rec[:n+len(s2.EncodeSnappy(rec[n:cap(rec)], raw))]
	}
	*bp = rec
	return appendRecord(m.queues, rec)
}

// recPool holds queue record buffers: a queue does not keep a record after
// Append returns.
var recPool = sync.Pool{New: func() any { return new([]byte) }}

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
