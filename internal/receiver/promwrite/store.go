package promwrite

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// result is the outcome of storing one request: v2's written counts, and the
// status and error when it failed.
type result struct {
	samples, histograms, exemplars int
	code                           int
	err                            error
}

// appendScratch is the per-series bookkeeping of one request, reused.
type appendScratch struct {
	keys       [][]byte
	keyBuf     []byte
	keyStarts  []int
	entries    []*seriesEntry
	newKeys    [][]byte
	newEntries []*seriesEntry
	exemplars  []exemplar.Exemplar
	sb         labels.ScratchBuilder
}

// release drops references to entries and request bytes kept in the pool.
func (a *appendScratch) release() {
	clear(a.keys)
	clear(a.entries)
	clear(a.newKeys)
	clear(a.newEntries)
	clear(a.exemplars)
	a.keys, a.entries = a.keys[:0], a.entries[:0]
	a.newKeys, a.newEntries, a.exemplars = a.newKeys[:0], a.newEntries[:0], a.exemplars[:0]
}

// store decodes raw and appends it in one transaction, committed (written to
// the WAL) before it returns success.
func (h *handler) store(r *http.Request, st *state, raw []byte, v2 bool) result {
	req, sc := &st.req, &st.app
	if err := req.decode(raw, v2); err != nil {
		h.logger.Error("decoding remote write request", "v2", v2, "err", err)
		return result{code: http.StatusBadRequest, err: err}
	}
	cache := h.cache1
	if v2 {
		cache = h.cache2
	}
	sc.prepareKeys(req)
	if cache.lookup(sc.keys, sc.entries) > 0 {
		cache.promote(sc.keys, sc.entries)
	}
	if !v2 {
		// Labels of series the cache does not know, before anything is
		// appended: malformed ones refuse the whole request.
		for i := range req.series {
			if sc.entries[i] == nil {
				if _, err := req.labelsOf(&req.series[i]); err != nil {
					h.logger.Error("decoding remote write request", "v2", v2, "err", err)
					return result{code: http.StatusBadRequest, err: err}
				}
			}
		}
	}

	app := h.app.AppenderV2(r.Context())
	exApp, ok := app.(storage.ExemplarAppenderV2)
	if !ok {
		_ = app.Rollback()
		return result{code: http.StatusInternalServerError,
			err: fmt.Errorf("remote write receiver requires a storage.ExemplarAppenderV2, got %T", app)}
	}
	la := newLimitedAppender(exApp, time.Now())
	var res result
	if v2 {
		res = h.writeV2(la, req, sc)
	} else {
		res = h.writeV1(la, req, sc)
	}
	if res.err == nil || res.code/100 == 4 {
		h.samples.WithLabelValues("sample").Add(float64(res.samples))
		h.samples.WithLabelValues("histogram").Add(float64(res.histograms))
		h.samples.WithLabelValues("exemplar").Add(float64(res.exemplars))
		cache.add(sc.newKeys, sc.newEntries)
	}
	return res
}

// prepareKeys computes each series' cache key: the raw label fields for v1,
// the length-prefixed label strings for v2 (nil when the refs are invalid, so
// the slow path reports the error).
func (a *appendScratch) prepareKeys(req *request) {
	n := len(req.series)
	a.keys = slices.Grow(a.keys[:0], n)[:n]
	a.entries = slices.Grow(a.entries[:0], n)[:n]
	if !req.v2 {
		for i := range req.series {
			a.keys[i] = req.series[i].key
		}
		return
	}
	a.keyBuf, a.keyStarts = a.keyBuf[:0], a.keyStarts[:0]
	for i := range req.series {
		s := &req.series[i]
		refs := req.refs[s.lbl:s.lblEnd]
		start := len(a.keyBuf)
		ok := len(refs) > 0 && len(refs)%2 == 0
		for _, ref := range refs {
			if int(ref) >= len(req.symbols) {
				ok = false
				break
			}
			sym := req.symbols[ref]
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

// remember queues a new series for the cache once the request is committed.
func (a *appendScratch) remember(key []byte, e *seriesEntry) {
	if key != nil {
		a.newKeys = append(a.newKeys, key)
		a.newEntries = append(a.newEntries, e)
	}
}

// writeV1 appends a v1 request. As in Prometheus, any refused sample refuses
// the whole request (rolled back, 400), invalid series are skipped, exemplar
// errors are only logged.
func (h *handler) writeV1(la limitedAppender, req *request, sc *appendScratch) result {
	res, err := h.appendV1(la, req, sc)
	if err != nil {
		_ = la.app.Rollback()
	} else {
		err = la.app.Commit()
	}
	switch {
	case err == nil:
		return res
	case isRejectedSample(err), isHistogramValidationError(err):
		return result{code: http.StatusBadRequest, err: err}
	case errors.Is(err, pipeline.ErrOverloaded):
		return result{code: http.StatusServiceUnavailable, err: err}
	default:
		return result{code: http.StatusInternalServerError, err: err}
	}
}

// appendV1 appends every valid series and counts what was appended.
func (h *handler) appendV1(la limitedAppender, req *request, sc *appendScratch) (res result, _ error) {
	var invalid, oooExemplars int
	defer func() {
		if oooExemplars > 0 {
			h.logger.Warn("Error on ingesting out-of-order exemplars", "num_dropped", oooExemplars)
		}
		h.invalidLabels.Add(float64(invalid))
	}()
	for i := range req.series {
		s := &req.series[i]
		e := sc.entries[i]
		if e == nil {
			sc.sb.Reset()
			raw, _ := req.labelsOf(s) // decoded, without error, by store
			for _, l := range raw {
				sc.sb.Add(l.name, l.value)
			}
			sc.sb.Sort()
			ls := sc.sb.Labels()
			if err := validLabels(ls); err != nil {
				h.logger.Warn("Invalid metric names or labels", "err", err)
				invalid++
				continue
			}
			e = &seriesEntry{lset: ls}
			sc.remember(s.key, e)
		}
		ls, ref := e.lset, e.seriesRef()
		var err error
		for _, smp := range req.samples[s.smp:s.smpEnd] {
			ref, err = la.appendFloat(ref, ls, 0, smp.t, smp.v)
			if err != nil && !isPartial(err) {
				if isRejectedSample(err) {
					h.logger.Error("Out of order sample from remote write", "err", err.Error(), "series", ls.String(), "timestamp", smp.t)
				}
				return res, err
			}
		}
		for _, hp := range req.hists1[s.hist:s.histEnd] {
			if hp.IsFloatHistogram() {
				ref, err = la.appendHistogram(ref, ls, 0, hp.Timestamp, nil, hp.ToFloatHistogram())
			} else {
				ref, err = la.appendHistogram(ref, ls, 0, hp.Timestamp, hp.ToIntHistogram(), nil)
			}
			if err != nil && !isPartial(err) {
				if isRejectedSample(err) {
					h.logger.Error("Out of order histogram from remote write", "err", err.Error(), "series", ls.String(), "timestamp", hp.Timestamp)
				}
				return res, err
			}
		}
		res.samples += s.smpEnd - s.smp
		res.histograms += s.histEnd - s.hist
		e.update(ref)
		if s.ex == s.exEnd {
			continue
		}
		exs := sc.exemplars[:0]
		for _, ep := range req.exs1[s.ex:s.exEnd] {
			exs = append(exs, ep.ToExemplar(&sc.sb, nil))
		}
		sc.exemplars = exs
		slices.SortFunc(exs, exemplar.Compare)
		_, err = la.appendExemplars(ref, ls, exs)
		if err == nil {
			res.exemplars += len(exs)
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
func (h *handler) writeV2(la limitedAppender, req *request, sc *appendScratch) result {
	res, bad, err := h.appendV2(la, req, sc)
	if err != nil {
		_ = la.app.Rollback()
		return result{code: http.StatusInternalServerError, err: err}
	}
	if err := la.app.Commit(); err != nil {
		if errors.Is(err, pipeline.ErrOverloaded) {
			return result{code: http.StatusServiceUnavailable, err: err}
		}
		return result{code: http.StatusInternalServerError, err: err}
	}
	if len(bad) > 0 {
		res.code, res.err = http.StatusBadRequest, errors.Join(bad...)
	}
	return res
}

func (h *handler) appendV2(la limitedAppender, req *request, sc *appendScratch) (res result, bad []error, _ error) {
	var invalid, oooExemplars int
	defer func() {
		if oooExemplars > 0 {
			h.logger.Warn("Error on ingesting out-of-order exemplars", "num_dropped", oooExemplars)
		}
		h.invalidLabels.Add(float64(invalid))
	}()
	// handlePartial counts exemplar errors that come with an appended sample.
	handlePartial := func(err error, ls labels.Labels) (failed int, _ error) {
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
				bad = append(bad, fmt.Errorf("%w for series %v", eErr, ls.String()))
				continue
			}
			h.logger.Error("failed to ingest exemplar, emitting error log, but no error for PRW caller", "err", eErr.Error(), "series", ls.String())
		}
		return len(pErr.ExemplarErrors), nil
	}

	for i := range req.series {
		s := &req.series[i]
		refs := req.refs[s.lbl:s.lblEnd]
		nSamples := (s.smpEnd - s.smp) + (s.histEnd - s.hist)
		e := sc.entries[i]
		var ls labels.Labels
		if e != nil {
			ls = e.lset
		} else {
			var err error
			ls, err = writev2.TimeSeries{LabelsRefs: refs}.ToLabels(&sc.sb, req.symbols)
			if err != nil {
				bad = append(bad, fmt.Errorf("parsing labels for series %v: %w", refs, err))
				invalid += nSamples
				continue
			}
		}
		if _, err := (writev2.TimeSeries{Metadata: s.meta}).ToMetadata(req.symbols); err != nil {
			bad = append(bad, fmt.Errorf("parsing metadata for series %v: %w", refs, err))
			continue
		}
		if e == nil {
			if err := validLabels(ls); err != nil {
				bad = append(bad, err)
				invalid += nSamples
				continue
			}
		}
		if nSamples == 0 {
			bad = append(bad, fmt.Errorf("TimeSeries must contain at least one sample or histogram for series %v", ls.String()))
			continue
		}
		if e == nil {
			e = &seriesEntry{lset: ls}
			sc.remember(sc.keys[i], e)
		}

		ref := e.seriesRef()
		var err error
		for _, smp := range req.samples[s.smp:s.smpEnd] {
			ref, err = la.appendFloat(ref, ls, smp.st, smp.t, smp.v)
			if _, err = handlePartial(err, ls); err == nil {
				res.samples++
				continue
			}
			if isRejectedSample(err) {
				h.logger.Error("Out of order sample from remote write", "err", err.Error(), "series", ls.String(), "timestamp", smp.t)
				bad = append(bad, fmt.Errorf("%w for series %v", err, ls.String()))
				continue
			}
			return result{}, nil, err
		}
		for _, hp := range req.hists2[s.hist:s.histEnd] {
			if hp.IsFloatHistogram() {
				ref, err = la.appendHistogram(ref, ls, hp.StartTimestamp, hp.Timestamp, nil, hp.ToFloatHistogram())
			} else {
				ref, err = la.appendHistogram(ref, ls, hp.StartTimestamp, hp.Timestamp, hp.ToIntHistogram(), nil)
			}
			if _, err = handlePartial(err, ls); err == nil {
				res.histograms++
				continue
			}
			if isRejectedSample(err) {
				h.logger.Error("Out of order histogram from remote write", "err", err.Error(), "series", ls.String(), "timestamp", hp.Timestamp)
				bad = append(bad, fmt.Errorf("%w for series %v", err, ls.String()))
				continue
			}
			if isHistogramValidationError(err) {
				h.logger.Error("Invalid histogram received", "err", err.Error(), "series", ls.String(), "timestamp", hp.Timestamp)
				bad = append(bad, fmt.Errorf("%w for series %v", err, ls.String()))
				continue
			}
			return result{}, nil, err
		}
		e.update(ref)

		if s.ex == s.exEnd {
			continue
		}
		exs := sc.exemplars[:0]
		for _, ep := range req.exs2[s.ex:s.exEnd] {
			ex, err := ep.ToExemplar(&sc.sb, req.symbols)
			if err != nil {
				bad = append(bad, fmt.Errorf("parsing exemplar for series %v: %w", ls.String(), err))
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
		failed, err := handlePartial(err, ls)
		if err != nil {
			h.logger.Error("failed to ingest exemplars, emitting error log, but no error for PRW caller", "err", err.Error(), "series", ls.String())
		} else {
			res.exemplars += max(0, len(exs)-failed)
		}
	}
	return res, bad, nil
}
