package metrics

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"slices"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
)

// RemoteWriteAppender appends decoded remote-write requests to the TSDB exactly as
// Prometheus's own receiver does (same partial-write rules, same errors), but
// remembers each series' head reference, so a known series skips label
// construction, validation and the head's hash lookup. It is the metrics store's
// pipeline.Samples.
type RemoteWriteAppender struct {
	app    storage.AppendableV2
	logger *slog.Logger
	cache1 *seriesCache // v1: keyed by the raw label fields
	cache2 *seriesCache // v2: keyed by the resolved label strings
	// check applies a tenant's label and series limits to a new series
	// (nil: none); its error refuses the series, not the request.
	check func(labels.Labels) error
	// retention, when set, refuses samples older than it (the store's).
	retention time.Duration
	// lean: cache entries keep no labels, as the head (Vispyr's own) keeps
	// them itself and finds a series by its ref; a stale ref is retried
	// with the labels decoded from the request.
	lean bool

	*rwMetrics
	// scratch is a free list rather than a sync.Pool: a pool is emptied by every
	// GC, and regrowing the arenas of a 2k-series request costs more than keeping
	// a few of them.
	scratch chan *appendScratch
}

var _ pipeline.Samples = (*RemoteWriteAppender)(nil)

// rwMetrics are the remote-write path's own metrics, shared by every tenant.
type rwMetrics struct {
	invalidLabels prometheus.Counter
	samples       *prometheus.CounterVec
}

func newRWMetrics(reg prometheus.Registerer) *rwMetrics {
	return &rwMetrics{
		invalidLabels: promauto.With(reg).NewCounter(prometheus.CounterOpts{
			Name: "vispyr_remote_write_invalid_labels_samples_total",
			Help: "Remote-write samples and histograms dropped because their series labels were invalid.",
		}),
		samples: promauto.With(reg).NewCounterVec(prometheus.CounterOpts{
			Name: "vispyr_remote_write_appended_total",
			Help: "Samples, histograms and exemplars appended from remote write, by kind.",
		}, []string{"kind"}),
	}
}

func registerCacheGauge(reg prometheus.Registerer, n func() int) {
	promauto.With(reg).NewGaugeFunc(prometheus.GaugeOpts{
		Name: "vispyr_remote_write_series_cache_series",
		Help: "Series whose head reference the remote-write receiver remembers.",
	}, func() float64 { return float64(n()) })
}

// NewRemoteWriteAppender returns the remote-write append path over app (a
// *tsdb.DB), whose appenders must implement storage.ExemplarAppenderV2.
func NewRemoteWriteAppender(app storage.AppendableV2, logger *slog.Logger, reg prometheus.Registerer) *RemoteWriteAppender {
	a := newRemoteWriteAppender(app, logger, newRWMetrics(reg), nil)
	registerCacheGauge(reg, a.cacheLen)
	return a
}

func newRemoteWriteAppender(app storage.AppendableV2, logger *slog.Logger, m *rwMetrics, check func(labels.Labels) error) *RemoteWriteAppender {
	h := &RemoteWriteAppender{
		app: app, logger: logger, check: check, rwMetrics: m,
		cache1: newSeriesCache(cacheGeneration), cache2: newSeriesCache(cacheGeneration),
		scratch: make(chan *appendScratch, 2*runtime.GOMAXPROCS(0)),
	}
	if db, ok := app.(interface{ Head() *tsdb.Head }); ok {
		size := func() int { return int(db.Head().NumSeries()) }
		h.cache1.size, h.cache2.size = size, size
	}
	return h
}

// newEntry makes e the cache entry of a new series: without its labels when
// the head keeps them itself and finds the series by ref (lean).
func (h *RemoteWriteAppender) newEntry(e *seriesEntry, ls labels.Labels) {
	if !h.lean {
		e.lset = ls
	}
}

func (h *RemoteWriteAppender) cacheLen() int { return h.cache1.len() + h.cache2.len() }

// result is the outcome of storing one request: v2's written counts, and the
// error when it failed (invalid: the client's fault, 400; else 500).
type result struct {
	remotewrite.Written
	err error
}

// appendScratch is the per-series bookkeeping of one request, reused.
type appendScratch struct {
	keys      [][]byte
	keyBuf    []byte
	keyStarts []int
	entries   []seriesEntry
	newSeries []int // entries to add to the cache
	exemplars []exemplar.Exemplar
	sb        labels.ScratchBuilder
}

// release drops references to entries and request bytes kept in the free list.
func (a *appendScratch) release() {
	clear(a.keys)
	clear(a.entries)
	clear(a.exemplars)
	a.keys, a.entries = a.keys[:0], a.entries[:0]
	a.newSeries, a.exemplars = a.newSeries[:0], a.exemplars[:0]
}

func (h *RemoteWriteAppender) getScratch() *appendScratch {
	select {
	case sc := <-h.scratch:
		return sc
	default:
		return new(appendScratch)
	}
}

func (h *RemoteWriteAppender) putScratch(sc *appendScratch) {
	sc.release()
	select {
	case h.scratch <- sc:
	default:
	}
}

// ConsumeSamples appends req in one transaction, committed (written to the TSDB's
// WAL) before it returns. As Prometheus: v1 refuses the whole request for any
// refused sample; v2 commits the valid series and reports the rest. Refused input
// is a pipeline.Invalid error; Written counts what was committed.
func (h *RemoteWriteAppender) ConsumeSamples(ctx context.Context, req *remotewrite.Request) (remotewrite.Written, error) {
	sc := h.getScratch()
	defer h.putScratch(sc)
	cache := h.cache1
	if req.V2() {
		cache = h.cache2
	}
	sc.prepareKeys(req)
	if cache.lookup(sc.keys, sc.entries) > 0 {
		cache.promote(sc.entries)
	}
	if !req.V2() {
		// Labels of series the cache does not know, before anything is
		// appended: malformed ones refuse the whole request.
		for i := range req.Len() {
			if !sc.entries[i].found() {
				if _, err := req.Labels(i); err != nil {
					h.logger.Error("decoding remote write request", "v2", false, "err", err)
					return remotewrite.Written{}, pipeline.Invalid(err)
				}
			}
		}
	}

	if raw, ok := h.app.(RawV1Appendable); ok && h.passesAsIs(req, sc.entries) {
		if err := raw.AppendRawV1(ctx, req); err != nil {
			return remotewrite.Written{}, err
		}
		h.samples.WithLabelValues("sample").Add(float64(req.NumSamples()))
		h.samples.WithLabelValues("exemplar").Add(float64(req.NumExemplars()))
		return remotewrite.Written{Samples: req.NumSamples(), Exemplars: req.NumExemplars()}, nil
	}

	app := h.app.AppenderV2(ctx)
	exApp, ok := app.(storage.ExemplarAppenderV2)
	if !ok {
		_ = app.Rollback()
		return remotewrite.Written{}, fmt.Errorf("remote write receiver requires a storage.ExemplarAppenderV2, got %T", app)
	}
	la := newLimitedAppender(exApp, time.Now(), h.retention)
	var res result
	if req.V2() {
		res = h.writeV2(la, req, sc)
	} else {
		res = h.writeV1(la, req, sc)
	}
	if res.err == nil || pipeline.IsInvalid(res.err) || pipeline.IsLimit(res.err) {
		h.samples.WithLabelValues("sample").Add(float64(res.Samples))
		h.samples.WithLabelValues("histogram").Add(float64(res.Histograms))
		h.samples.WithLabelValues("exemplar").Add(float64(res.Exemplars))
		cache.add(sc.entries, sc.newSeries)
	}
	cache.setRefs(sc.entries) // the refs the head changed, even if rolled back, as it keeps the series
	return res.Written, res.err
}

// RawV1Appendable is an appendable that can take a v1 request's series as
// they came (a forwarder's queue, which passes on each series' protobuf
// field: remotewrite.Request.Field). ConsumeSamples hands it the requests
// that the sample-by-sample path would take whole and unchanged: every series
// already validated (in the cache, so its labels are one run of fields:
// Request.Key), no native histogram (whose schema may be reduced), every
// timestamp in bounds.
type RawV1Appendable interface {
	AppendRawV1(ctx context.Context, req *remotewrite.Request) error
}

// MetadataV1Appender is an appender that takes a v1 request's metadata
// fields as they came, with its samples (a forwarder's). The TSDB's
// appender is none: its metadata is dropped, as Prometheus's receiver does.
type MetadataV1Appender interface {
	AppendMetadataV1(fields []byte)
}

// passesAsIs reports whether v1 req may go to a RawV1Appendable as it came.
func (h *RemoteWriteAppender) passesAsIs(req *remotewrite.Request, entries []seriesEntry) bool {
	if req.V2() {
		return false
	}
	la := newLimitedAppender(nil, time.Now(), h.retention)
	for i := range req.Len() {
		if !entries[i].found() || len(req.HistogramsV1(i)) > 0 {
			return false
		}
		for _, smp := range req.Samples(i) {
			if la.checkTime(smp.T) != nil {
				return false
			}
		}
		for _, e := range req.ExemplarsV1(i) {
			if la.checkTime(e.Timestamp) != nil {
				return false
			}
		}
	}
	return true
}

// prepareKeys computes each series' cache key: the raw label fields for v1,
// the length-prefixed label strings for v2 (nil when the refs are invalid, so
// the slow path reports the error).
func (a *appendScratch) prepareKeys(req *remotewrite.Request) {
	n := req.Len()
	a.keys = slices.Grow(a.keys[:0], n)[:n]
	a.entries = slices.Grow(a.entries[:0], n)[:n]
	a.newSeries = a.newSeries[:0]
	if !req.V2() {
		for i := range n {
			a.keys[i] = req.Key(i)
		}
		return
	}
	a.keyBuf, a.keyStarts = a.keyBuf[:0], a.keyStarts[:0]
	symbols := req.Symbols()
	for i := range n {
		refs := req.LabelRefs(i)
		start := len(a.keyBuf)
		ok := len(refs) > 0 && len(refs)%2 == 0
		for _, ref := range refs {
			if int(ref) >= len(symbols) {
				ok = false
				break
			}
			sym := symbols[ref]
			a.keyBuf = binary.AppendUvarint(a.keyBuf, uint64(len(sym)))
			a.keyBuf = append(a.keyBuf, sym...)
		}
		if !ok {
			a.keyBuf = a.keyBuf[:start]
			a.keyStarts = append(a.keyStarts, -1)
			continue
		}
		a.keyStarts = append(a.keyStarts, start)
	}
	end := len(a.keyBuf)
	for i := n - 1; i >= 0; i-- {
		if a.keyStarts[i] < 0 {
			a.keys[i] = nil
			continue
		}
		a.keys[i] = a.keyBuf[a.keyStarts[i]:end:end]
		end = a.keyStarts[i]
	}
}

// validLabels applies the stock receiver's checks to a new series.
func validLabels(ls labels.Labels) error {
	if !ls.Has(labels.MetricName) || !ls.IsValid(model.UTF8Validation) {
		return fmt.Errorf("invalid metric name or labels, got %v", ls.String())
	}
	if name, dup := ls.HasDuplicateLabelNames(); dup {
		return fmt.Errorf("invalid labels for series, labels %v, duplicated label %s", ls.String(), name)
	}
	return nil
}

func isRejectedSample(err error) bool {
	return errors.Is(err, storage.ErrOutOfOrderSample) ||
		errors.Is(err, storage.ErrOutOfBounds) ||
		errors.Is(err, storage.ErrDuplicateSampleForTimestamp) ||
		errors.Is(err, storage.ErrTooOldSample)
}

func isHistogramValidationError(err error) bool {
	var e histogram.Error
	return errors.As(err, &e)
}

func isPartial(err error) bool { return errors.Is(err, (*storage.AppendPartialError)(nil)) }

// remember queues new series i for the cache once the request is committed.
func (a *appendScratch) remember(i int) {
	if a.keys[i] != nil {
		a.newSeries = append(a.newSeries, i)
	}
}

// writeV1 appends a v1 request. As in Prometheus, any refused sample refuses
// the whole request (rolled back, 400), invalid series are skipped, exemplar
// errors are only logged.
func (h *RemoteWriteAppender) writeV1(la limitedAppender, req *remotewrite.Request, sc *appendScratch) result {
	res, err := h.appendV1(la, req, sc)
	if err != nil {
		_ = la.app.Rollback()
	} else {
		if m, ok := la.app.(MetadataV1Appender); ok && len(req.MetadataV1()) > 0 {
			m.AppendMetadataV1(req.MetadataV1())
		}
		err = la.app.Commit()
	}
	switch {
	case err == nil:
		return res // res.err: a series refused by a tenant limit
	case isRejectedSample(err), isHistogramValidationError(err):
		return result{err: pipeline.Invalid(err)}
	default:
		return result{err: err}
	}
}

// appendV1 appends every valid series and counts what was appended.
func (h *RemoteWriteAppender) appendV1(la limitedAppender, req *remotewrite.Request, sc *appendScratch) (res result, _ error) {
	var invalid, oooExemplars int
	defer func() {
		if oooExemplars > 0 {
			h.logger.Warn("Error on ingesting out-of-order exemplars", "num_dropped", oooExemplars)
		}
		h.invalidLabels.Add(float64(invalid))
	}()
	for i := range req.Len() {
		e := &sc.entries[i]
		var decoded labels.Labels // a new series' labels
		if !e.found() {
			ls, _ := req.LabelSet(i, &sc.sb) // decoded, without error, by ConsumeSamples
			decoded = ls
			if err := validLabels(ls); err != nil {
				h.logger.Warn("Invalid metric names or labels", "err", err)
				invalid++
				continue
			}
			if h.check != nil {
				if err := h.check(ls); err != nil {
					// As Mimir: the series is refused, the others stored,
					// and the request answered with the first refusal.
					if res.err == nil {
						res.err = err
					}
					invalid += len(req.Samples(i)) + len(req.HistogramsV1(i))
					continue
				}
			}
			h.newEntry(e, ls)
			sc.remember(i)
		}
		ls, ref := e.lset, e.seriesRef()
		if ls.IsEmpty() {
			ls = decoded // a new lean entry's, or empty
		}
		full := func() labels.Labels { // a lean entry's labels, decoded when needed
			if ls.IsEmpty() {
				ls, _ = req.LabelSet(i, &sc.sb)
			}
			return ls
		}
		var err error
		smps, hists := req.Samples(i), req.HistogramsV1(i)
		for _, smp := range smps {
			ref, err = la.appendFloat(ref, ls, 0, smp.T, smp.V, storage.AOptions{})
			if err != nil && ls.IsEmpty() { // the series left the head: go by its labels
				ref, err = la.appendFloat(0, full(), 0, smp.T, smp.V, storage.AOptions{})
			}
			if err != nil && !isPartial(err) {
				if isRejectedSample(err) {
					h.logger.Error("Out of order sample from remote write", "err", err.Error(), "series", full().String(), "timestamp", smp.T)
				}
				return res, err
			}
		}
		for _, hp := range hists {
			ls = full() // histograms go to the TSDB's head, which wants labels with a stale ref
			if hp.IsFloatHistogram() {
				ref, err = la.appendHistogram(ref, ls, 0, hp.Timestamp, nil, hp.ToFloatHistogram(), storage.AOptions{})
			} else {
				ref, err = la.appendHistogram(ref, ls, 0, hp.Timestamp, hp.ToIntHistogram(), nil, storage.AOptions{})
			}
			if err != nil && !isPartial(err) {
				if isRejectedSample(err) {
					h.logger.Error("Out of order histogram from remote write", "err", err.Error(), "series", ls.String(), "timestamp", hp.Timestamp)
				}
				return res, err
			}
		}
		res.Samples += len(smps)
		res.Histograms += len(hists)
		e.update(ref)
		exs1 := req.ExemplarsV1(i)
		if len(exs1) == 0 {
			continue
		}
		exs := sc.exemplars[:0]
		for _, ep := range exs1 {
			exs = append(exs, ep.ToExemplar(&sc.sb, nil))
		}
		sc.exemplars = exs
		slices.SortFunc(exs, exemplar.Compare)
		_, err = la.appendExemplars(ref, full(), exs)
		if err == nil {
			res.Exemplars += len(exs)
		} else {
			if pErr, ok := errors.AsType[*storage.AppendPartialError](err); ok {
				for _, eErr := range pErr.ExemplarErrors {
					if errors.Is(eErr, storage.ErrOutOfOrderExemplar) {
						oooExemplars++
					}
				}
			}
			h.logger.Debug("Error while adding exemplars", "series", ls.String(), "err", err)
		}
	}
	return res, nil
}

// writeV2 appends a v2 request. As in Prometheus, refused samples and invalid
// series are reported (400) while the rest is committed; any other error rolls
// everything back (500) for the sender to retry.
func (h *RemoteWriteAppender) writeV2(la limitedAppender, req *remotewrite.Request, sc *appendScratch) result {
	res, bad, err := h.appendV2(la, req, sc)
	if err != nil {
		_ = la.app.Rollback()
		return result{err: err}
	}
	if err := la.app.Commit(); err != nil {
		return result{err: err}
	}
	for _, err := range bad {
		if pipeline.IsLimit(err) {
			// A tenant over its series limit is told so (429), not 400.
			res.err = err
			return res
		}
	}
	if len(bad) > 0 {
		res.err = pipeline.Invalid(errors.Join(bad...))
	}
	return res
}

func (h *RemoteWriteAppender) appendV2(la limitedAppender, req *remotewrite.Request, sc *appendScratch) (res result, bad []error, _ error) {
	var invalid, oooExemplars int
	defer func() {
		if oooExemplars > 0 {
			h.logger.Warn("Error on ingesting out-of-order exemplars", "num_dropped", oooExemplars)
		}
		h.invalidLabels.Add(float64(invalid))
	}()
	// handlePartial counts exemplar errors that come with an appended sample.
	handlePartial := func(err error, full func() labels.Labels) (failed int, _ error) {
		if err == nil || !isPartial(err) {
			return 0, err
		}
		pErr, ok := errors.AsType[*storage.AppendPartialError](err)
		if !ok {
			return 0, err
		}
		for _, eErr := range pErr.ExemplarErrors {
			if errors.Is(eErr, storage.ErrOutOfOrderExemplar) {
				oooExemplars++
				bad = append(bad, fmt.Errorf("%w for series %v", eErr, full().String()))
				continue
			}
			h.logger.Error("failed to ingest exemplar, emitting error log, but no error for PRW caller", "err", eErr.Error(), "series", full().String())
		}
		return len(pErr.ExemplarErrors), nil
	}

	symbols := req.Symbols()
	for i := range req.Len() {
		refs := req.LabelRefs(i)
		smps, hists := req.Samples(i), req.HistogramsV2(i)
		nSamples := len(smps) + len(hists)
		e := &sc.entries[i]
		var ls labels.Labels
		if e.found() {
			ls = e.lset
		} else {
			var err error
			ls, err = writev2.TimeSeries{LabelsRefs: refs}.ToLabels(&sc.sb, symbols)
			if err != nil {
				bad = append(bad, fmt.Errorf("parsing labels for series %v: %w", refs, err))
				invalid += nSamples
				continue
			}
		}
		meta, err := (writev2.TimeSeries{Metadata: req.Metadata(i)}).ToMetadata(symbols)
		if err != nil {
			bad = append(bad, fmt.Errorf("parsing metadata for series %v: %w", refs, err))
			continue
		}
		if !e.found() {
			err := validLabels(ls)
			if err == nil && h.check != nil {
				err = h.check(ls)
			}
			if err != nil {
				bad = append(bad, err)
				invalid += nSamples
				continue
			}
		}
		if nSamples == 0 {
			if ls.IsEmpty() { // a lean cache entry
				ls, _ = writev2.TimeSeries{LabelsRefs: refs}.ToLabels(&sc.sb, symbols)
			}
			bad = append(bad, fmt.Errorf("TimeSeries must contain at least one sample or histogram for series %v", ls.String()))
			continue
		}
		if !e.found() {
			h.newEntry(e, ls)
			sc.remember(i)
		}
		full := func() labels.Labels { // a lean entry's labels, decoded when needed
			if ls.IsEmpty() {
				ls, _ = writev2.TimeSeries{LabelsRefs: refs}.ToLabels(&sc.sb, symbols)
			}
			return ls
		}

		ref := e.seriesRef()
		// Metadata goes with every sample, as Prometheus's receiver passes it.
		opts := storage.AOptions{Metadata: meta}
		for _, smp := range smps {
			ref, err = la.appendFloat(ref, ls, smp.ST, smp.T, smp.V, opts)
			if err != nil && ls.IsEmpty() { // the series left the head: go by its labels
				ref, err = la.appendFloat(0, full(), smp.ST, smp.T, smp.V, opts)
			}
			if _, err = handlePartial(err, full); err == nil {
				res.Samples++
				continue
			}
			if isRejectedSample(err) {
				h.logger.Error("Out of order sample from remote write", "err", err.Error(), "series", full().String(), "timestamp", smp.T)
				bad = append(bad, fmt.Errorf("%w for series %v", err, full().String()))
				continue
			}
			return result{}, nil, err
		}
		for _, hp := range hists {
			ls = full() // histograms go to the TSDB's head, which wants labels with a stale ref
			if hp.IsFloatHistogram() {
				ref, err = la.appendHistogram(ref, ls, hp.StartTimestamp, hp.Timestamp, nil, hp.ToFloatHistogram(), opts)
			} else {
				ref, err = la.appendHistogram(ref, ls, hp.StartTimestamp, hp.Timestamp, hp.ToIntHistogram(), nil, opts)
			}
			if _, err = handlePartial(err, full); err == nil {
				res.Histograms++
				continue
			}
			if isRejectedSample(err) {
				h.logger.Error("Out of order histogram from remote write", "err", err.Error(), "series", full().String(), "timestamp", hp.Timestamp)
				bad = append(bad, fmt.Errorf("%w for series %v", err, full().String()))
				continue
			}
			if isHistogramValidationError(err) {
				h.logger.Error("Invalid histogram received", "err", err.Error(), "series", full().String(), "timestamp", hp.Timestamp)
				bad = append(bad, fmt.Errorf("%w for series %v", err, full().String()))
				continue
			}
			return result{}, nil, err
		}
		e.update(ref)

		exs2 := req.ExemplarsV2(i)
		if len(exs2) == 0 {
			continue
		}
		ls = full()
		exs := sc.exemplars[:0]
		for _, ep := range exs2 {
			ex, err := ep.ToExemplar(&sc.sb, symbols)
			if err != nil {
				bad = append(bad, fmt.Errorf("parsing exemplar for series %v: %w", full().String(), err))
				continue
			}
			exs = append(exs, ex)
		}
		sc.exemplars = exs
		if len(exs) == 0 {
			continue
		}
		slices.SortFunc(exs, exemplar.Compare)
		_, err = la.appendExemplars(ref, ls, exs)
		failed, err := handlePartial(err, full)
		if err != nil {
			h.logger.Error("failed to ingest exemplars, emitting error log, but no error for PRW caller", "err", err.Error(), "series", full().String())
		} else {
			res.Exemplars += max(0, len(exs)-failed)
		}
	}
	return res, bad, nil
}
