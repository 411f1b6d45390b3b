package forward

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/cespare/xxhash/v2"
	"github.com/klauspost/compress/s2"
	"github.com/prometheus/common/model"
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

// rwCodec reads queue records of v1 series and sends each series to one
// shard, keyed by the hash of its label fields, so a series' samples stay in
// order. A unit is a snappy block of series (and v1 metadata) fields for one
// shard: blocks joined are a snappy-compressed v1 WriteRequest, so
// forwarding v1 neither decodes nor re-encodes a sample. Grouped records
// (rwgroup.go) are split into blocks already; the others (a
// snappy-compressed WriteRequest) are decompressed and regrouped.
//
// Remote write 2.0 carries metadata per series: a v2 codec keeps the last
// metadata of each family it read and sends it with every series of the
// family, as Prometheus's queue does from its scrape cache.
type rwCodec struct {
	v2       bool
	shards   int
	maxItems int
	mu       sync.Mutex
	families map[string]prompb.MetricMetadata
}

// maxFamilies bounds the metadata a v2 codec keeps.
const maxFamilies = 1 << 16

func (c *rwCodec) split(body []byte, emit func(uint64, []byte, int, int64)) error {
	if isGrouped(body) {
		return c.splitGrouped(body[len(groupedMagic):], emit)
	}
	raw, err := decodeBlock(nil, body)
	if err != nil {
		return err
	}
	gr := c.grouper(emit)
	defer gr.release()
	if err := c.regroup(gr, raw); err != nil {
		return err
	}
	gr.finish()
	return nil
}

// splitGrouped emits the blocks of a grouped body, on the shard of their
// group when the shard count divides the group count, else regrouped.
func (c *rwCodec) splitGrouped(body []byte, emit func(uint64, []byte, int, int64)) error {
	var gr *grouper
	var err error
	rerr := readGroups(body, func(groups uint64, g group) {
		if groups%uint64(c.shards) == 0 {
			emit(g.g, g.block, g.items, g.newest)
			return
		}
		if gr == nil {
			gr = c.grouper(emit)
		}
		if err != nil {
			return
		}
		var raw []byte
		if raw, err = decodeBlock(nil, g.block); err == nil {
			err = c.regroup(gr, raw)
		}
	})
	if gr != nil {
		defer gr.release()
		if err == nil && rerr == nil {
			gr.finish()
		}
	}
	if rerr != nil {
		return fmt.Errorf("read grouped record: %w", rerr)
	}
	return err
}

// grouper returns a grouper by shard whose blocks emit owns.
func (c *rwCodec) grouper(emit func(uint64, []byte, int, int64)) *grouper {
	return getGrouper(c.shards, c.maxItems, func(g int, block []byte, items int, newest int64) {
		emit(uint64(g), slices.Clone(block), items, newest)
	})
}

// regroup adds the series of the v1 WriteRequest raw to gr by shard, and its
// metadata (kept by a v2 codec, sent on by a v1 one).
func (c *rwCodec) regroup(gr *grouper, raw []byte) error {
	n := uint64(c.shards)
	meta := func(field []byte) { gr.add(int(xxhash.Sum64(field)%n), field, 0, 0) }
	if c.v2 {
		meta = c.keepMetadata
	}
	err := remotewrite.SplitV1(raw, func(s remotewrite.SeriesV1) { gr.add(int(s.Hash%n), s.Field, s.Items, s.Newest) }, meta)
	if err != nil {
		return fmt.Errorf("decode write request: %w", err)
	}
	return nil
}

// keepMetadata remembers a v1 metadata field for the series sent later.
func (c *rwCodec) keepMetadata(field []byte) {
	var req prompb.WriteRequest
	if req.Unmarshal(field) != nil || len(req.Metadata) != 1 {
		return // the receiver checked it: never happens
	}
	m := req.Metadata[0]
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.families[m.MetricFamilyName]; ok || len(c.families) < maxFamilies {
		c.families[m.MetricFamilyName] = m
	}
}

// rawPool holds the buffers that v2 batches are decompressed in.
var rawPool = sync.Pool{New: func() any { return new([]byte) }}

func (c *rwCodec) encode(blocks [][]byte) ([]byte, error) {
	if !c.v2 {
		return joinBlocks(blocks)
	}
	bp := rawPool.Get().(*[]byte)
	defer rawPool.Put(bp)
	raw := (*bp)[:0]
	for _, b := range blocks {
		var err error
		if raw, err = decodeBlock(raw, b); err != nil {
			return nil, fmt.Errorf("queued block: %w", err)
		}
	}
	*bp = raw
	var req prompb.WriteRequest
	if err := req.Unmarshal(raw); err != nil {
		return nil, fmt.Errorf("decode queued series: %w", err)
	}
	c.mu.Lock()
	v2 := toV2(req.Timeseries, c.families)
	c.mu.Unlock()
	out, err := v2.Marshal()
	if err != nil {
		return nil, fmt.Errorf("marshal write request: %w", err)
	}
	return s2.EncodeSnappy(nil, out), nil
}

// toV2 re-encodes v1 series as a remote-write 2.0 request with its symbols
// table, each series with its family's metadata when known.
func toV2(series []prompb.TimeSeries, families map[string]prompb.MetricMetadata) *writev2.Request {
	st := writev2.NewSymbolTable()
	out := make([]writev2.TimeSeries, len(series))
	for i, ts := range series {
		o := &out[i]
		o.LabelsRefs = symbolize(&st, ts.Labels, nil)
		if m, ok := familyOf(families, ts.Labels); ok {
			o.Metadata = writev2.Metadata{
				Type:    writev2.FromMetadataType(model.MetricType(strings.ToLower(m.Type.String()))),
				HelpRef: st.Symbolize(m.Help), UnitRef: st.Symbolize(m.Unit),
			}
		}
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

// familyOf finds the metadata of a series' metric family: its name, or its
// name without the suffix a histogram, summary or counter series adds.
func familyOf(families map[string]prompb.MetricMetadata, ls []prompb.Label) (prompb.MetricMetadata, bool) {
	if len(families) == 0 {
		return prompb.MetricMetadata{}, false
	}
	var name string
	for _, l := range ls {
		if l.Name == labels.MetricName {
			name = l.Value
		}
	}
	if m, ok := families[name]; ok {
		return m, true
	}
	for _, suffix := range familySuffixes {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if m, ok := families[base]; ok {
				return m, true
			}
		}
	}
	return prompb.MetricMetadata{}, false
}

// familySuffixes are what histogram, summary and counter series add to
// their family's name.
var familySuffixes = []string{"_bucket", "_count", "_sum", "_total", "_created"}

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
	// groups and maxItems shape grouped records: the least common multiple
	// of the destinations' shard counts, the least max_batch_items.
	groups, maxItems int
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
	return &txn{m: m, tenant: tenantOf(ctx)}
}

// txn collects one transaction's samples by series, and metadata by metric
// family.
type txn struct {
	m      *Metrics
	tenant string
	s      *txnSeries // nil until the first series
	meta   map[string]metadata.Metadata
	// rawMeta is v1 metadata fields as a remote-write client sent them.
	rawMeta []byte
}

// setMetadata records the metadata of ls's metric family: family when
// known, else the series name, without the suffix of a histogram's or
// summary's series (remote write 1.0 carries metadata per family).
func (t *txn) setMetadata(ls labels.Labels, family string, m metadata.Metadata) {
	if m.IsEmpty() {
		return
	}
	if family == "" {
		family = ls.Get(labels.MetricName)
		switch m.Type {
		case model.MetricTypeHistogram, model.MetricTypeGaugeHistogram, model.MetricTypeSummary:
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if base, ok := strings.CutSuffix(family, suffix); ok {
					family = base
					break
				}
			}
		}
	}
	if t.meta == nil {
		t.meta = map[string]metadata.Metadata{}
	}
	t.meta[family] = m
}

// AppendMetadataV1 takes a v1 request's metadata fields as they came
// (metrics.MetadataV1Appender): they are queued with the transaction.
func (t *txn) AppendMetadataV1(fields []byte) { t.rawMeta = append(t.rawMeta, fields...) }

func (t *txn) metadata() []prompb.MetricMetadata {
	out := make([]prompb.MetricMetadata, 0, len(t.meta))
	for _, family := range slices.Sorted(maps.Keys(t.meta)) {
		m := t.meta[family]
		out = append(out, prompb.MetricMetadata{
			Type: prompb.FromMetadataType(m.Type), MetricFamilyName: family, Help: m.Help, Unit: m.Unit,
		})
	}
	return out
}

// txnSeries are a transaction's series, reused by the next transaction: a
// remote-write 2.0 request of 2,000 series otherwise grew its index map
// (rehashing), a label slice per series and a samples slice per series anew.
type txnSeries struct {
	series []prompb.TimeSeries
	index  map[uint64]int // labels hash → series; collisions compared
	labels []prompb.Label // the series' labels, one after the other
}

var txnSeriesPool = sync.Pool{New: func() any { return &txnSeries{index: map[uint64]int{}} }}

// maxPooledSeries keeps one huge transaction's map and slices out of the
// pool (clearing a map costs its capacity, not its length).
const maxPooledSeries = 1 << 14

func (t *txn) get(ls labels.Labels) (*prompb.TimeSeries, storage.SeriesRef) {
	if t.s == nil {
		t.s = txnSeriesPool.Get().(*txnSeries)
	}
	ts := t.s
	h := ls.Hash()
	if i, ok := ts.index[h]; ok && labelsEqual(ts.series[i].Labels, ls) {
		return &ts.series[i], storage.SeriesRef(h)
	}
	n := len(ts.labels)
	ts.labels = slices.Grow(ts.labels, ls.Len())
	lbls := prompb.FromLabels(ls, ts.labels[n:n])
	ts.labels = ts.labels[:n+len(lbls)]
	if len(ts.series) < cap(ts.series) {
		ts.series = ts.series[:len(ts.series)+1]
	} else {
		ts.series = append(ts.series, prompb.TimeSeries{})
	}
	s := &ts.series[len(ts.series)-1]
	// The slot's samples array, if any, is reused; the rest starts empty.
	*s = prompb.TimeSeries{Labels: lbls[:len(lbls):len(lbls)], Samples: s.Samples[:0]}
	ts.index[h] = len(ts.series) - 1
	return s, storage.SeriesRef(h)
}

// release returns the series to the pool; the transaction holds none after.
func (t *txn) release() {
	ts := t.s
	if ts == nil {
		return
	}
	t.s = nil
	if len(ts.series) > maxPooledSeries {
		return
	}
	ts.series, ts.labels = ts.series[:0], ts.labels[:0]
	clear(ts.index)
	txnSeriesPool.Put(ts)
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
	var series []prompb.TimeSeries
	if t.s != nil {
		series = t.s.series
	}
	if len(series) == 0 && len(t.meta) == 0 && len(t.rawMeta) == 0 {
		return nil
	}
	for _, q := range t.m.queues {
		if q.Full() {
			return overloaded(ErrQueueFull)
		}
	}
	raw, err := (&prompb.WriteRequest{Timeseries: series, Metadata: t.metadata()}).Marshal()
	if err != nil {
		return fmt.Errorf("marshal forwarded samples: %w", err)
	}
	// Concatenated fields are one message: the client's metadata joins.
	raw = append(raw, t.rawMeta...)
	return appendAll(t.m.queues, t.tenant, s2.EncodeSnappy(nil, raw))
}

// AppendRawV1 queues the series of a v1 request as they came (the
// remote-write receiver checked them: metrics.RawV1Appendable) in every
// destination's queue, grouped for the shards (rwgroup.go); it returns once
// that is fsync'd. A request with metadata is queued as the client
// compressed it: remote-write clients send metadata in requests of their
// own, and a v2 destination reads it before the series it describes.
func (m *Metrics) AppendRawV1(ctx context.Context, req *remotewrite.Request) error {
	for _, q := range m.queues {
		if q.Full() {
			return overloaded(ErrQueueFull)
		}
	}
	bp := recPool.Get().(*[]byte)
	defer recPool.Put(bp)
	rec := encodeRecord(*bp, tenantOf(ctx), nil)
	ok := false
	if len(req.MetadataV1()) == 0 {
		rec, ok = appendGrouped(rec, req, m.groups, m.maxItems)
	}
	if !ok && req.Snappy() != nil {
		rec = append(rec, req.Snappy()...)
	} else if !ok {
		n := len(rec)
		rec = slices.Grow(rec, s2.MaxEncodedLen(len(req.Raw())))
		rec = rec[:n+len(s2.EncodeSnappy(rec[n:cap(rec)], req.Raw()))]
	}
	*bp = rec
	return appendRecord(m.queues, rec)
}

// recPool holds queue record buffers: a queue does not keep a record after
// Append returns.
var recPool = sync.Pool{New: func() any { return new([]byte) }}

func (t *txn) Rollback() error {
	t.release()
	clear(t.meta)
	t.rawMeta = t.rawMeta[:0]
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

func (a *appenderV1) UpdateMetadata(_ storage.SeriesRef, ls labels.Labels, m metadata.Metadata) (storage.SeriesRef, error) {
	a.setMetadata(ls, "", m)
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
	a.setMetadata(ls, opts.MetricFamilyName, opts.Metadata)
	return ref, nil
}

func (a *appenderV2) AppendExemplars(_ storage.SeriesRef, ls labels.Labels, es []exemplar.Exemplar) (storage.SeriesRef, error) {
	return a.exemplars(ls, slices.Clone(es)...), nil
}
