package forward

import (
	"context"
	"errors"

	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/metadata"
	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
	"github.com/vispyr/vispyr/internal/pipeline/profile"
	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
)

// The tees are serve's ingest paths with a forward: section: the local store
// takes the data first and a copy of what it accepted is queued for the
// destinations. A full queue refuses the request before the store sees it, so
// an outage of a destination sheds load instead of dropping the copy; should
// the queue fail after the store took the data, the client's retry stores it
// twice, which the stores merge (same series and timestamp, same span ID).

// Full reports whether a metrics destination's queue is full.
func (m *Metrics) Full() bool { return anyFull(m.queues) }

// Full reports whether a traces destination's queue is full.
func (t *Traces) Full() bool { return anyFull(t.queues) }

// Admit refuses a request while a traces destination's queue is full, as
// TeeTraces does before the store sees it: the check of a path that stores
// spans before it forwards their bytes (pipeline.RowTraces).
func (t *Traces) Admit(context.Context) error {
	if t.Full() {
		return overloaded(ErrQueueFull)
	}
	return nil
}

// Full reports whether a profiles destination's queue is full.
func (p *Profiles) Full() bool { return anyFull(p.queues) }

func anyFull(qs []Queue) bool {
	for _, q := range qs {
		if q.Full() {
			return true
		}
	}
	return false
}

// TeeTraces stores spans, then forwards them.
func TeeTraces(store pipeline.Traces, fwd *Traces) pipeline.Traces {
	return pipeline.TracesFunc(func(ctx context.Context, td ptrace.Traces) error {
		if fwd.Full() {
			return overloaded(ErrQueueFull)
		}
		err := store.ConsumeTraces(ctx, td)
		if _, partial := pipeline.AsPartial(err); err != nil && !partial {
			return err
		}
		// A partial success forwards every span: the store refused some for
		// its own limits, which the destination applies for itself.
		if ferr := fwd.ConsumeTraces(ctx, td); ferr != nil {
			return ferr
		}
		return err
	})
}

// TeeMetrics stores OTLP metrics, then forwards them.
func TeeMetrics(store pipeline.Metrics, fwd *Metrics, otlp *OTLPMetrics) pipeline.Metrics {
	return metricsFunc(func(ctx context.Context, md pmetric.Metrics) error {
		if fwd.Full() {
			return overloaded(ErrQueueFull)
		}
		if err := store.ConsumeMetrics(ctx, md); err != nil {
			return err
		}
		return otlp.ConsumeMetrics(ctx, md)
	})
}

type metricsFunc func(context.Context, pmetric.Metrics) error

func (f metricsFunc) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error { return f(ctx, md) }

// TeeSamples stores remote-write requests, then forwards them through fwdRW
// (the remote-write rules in front of the metrics forwarder). A request the
// store refused as a whole is not forwarded.
func TeeSamples(store, fwdRW pipeline.Samples, fwd *Metrics) pipeline.Samples {
	return samplesFunc(func(ctx context.Context, req *remotewrite.Request) (remotewrite.Written, error) {
		if fwd.Full() {
			return remotewrite.Written{}, overloaded(ErrQueueFull)
		}
		w, err := store.ConsumeSamples(ctx, req)
		if err != nil && !(pipeline.IsInvalid(err) && w.Samples+w.Histograms > 0) {
			return w, err
		}
		if _, ferr := fwdRW.ConsumeSamples(ctx, req); ferr != nil && !pipeline.IsInvalid(ferr) {
			return w, ferr
		}
		return w, err
	})
}

type samplesFunc func(context.Context, *remotewrite.Request) (remotewrite.Written, error)

func (f samplesFunc) ConsumeSamples(ctx context.Context, req *remotewrite.Request) (remotewrite.Written, error) {
	return f(ctx, req)
}

// TeeProfiles stores profiles, then forwards them. The push request is built
// before the store takes the batch, which it may change.
func TeeProfiles(store pipeline.Profiles, fwd *Profiles) pipeline.Profiles {
	return profilesFunc(func(ctx context.Context, b *profile.Batch) error {
		if fwd.Full() {
			return overloaded(ErrQueueFull)
		}
		rec, err := fwd.record(b)
		if err != nil {
			return err
		}
		if err := store.ConsumeProfiles(ctx, b); err != nil {
			return err
		}
		if rec == nil {
			return nil
		}
		return appendAll(fwd.queues, tenantOf(ctx), rec)
	})
}

type profilesFunc func(context.Context, *profile.Batch) error

func (f profilesFunc) ConsumeProfiles(ctx context.Context, b *profile.Batch) error { return f(ctx, b) }

// TeeAppendable appends to the store and the forwarder in one transaction,
// for the producers that do not retry (scrapes, rules, the span-metrics
// generator): Commit commits the store, then queues the copy. When a queue is
// full the store keeps the data and the copy is dropped, counted in
// vispyr_forward_items_dropped_total{reason="queue_full"}.
func TeeAppendable(store storage.Appendable, fwd *Metrics) storage.Appendable {
	return appendableFunc(func(ctx context.Context) storage.Appender {
		return &teeV1{teeTxn{fwdM: fwd}, store.Appender(ctx), fwd.Appender(ctx)}
	})
}

// TeeAppendableV2 is TeeAppendable for the v2 appender.
func TeeAppendableV2(store storage.AppendableV2, fwd *Metrics) storage.AppendableV2 {
	return appendableV2Func(func(ctx context.Context) storage.AppenderV2 {
		return &teeV2{teeTxn{fwdM: fwd}, store.AppenderV2(ctx), fwd.AppenderV2(ctx)}
	})
}

type appendableFunc func(context.Context) storage.Appender

func (f appendableFunc) Appender(ctx context.Context) storage.Appender { return f(ctx) }

type appendableV2Func func(context.Context) storage.AppenderV2

func (f appendableV2Func) AppenderV2(ctx context.Context) storage.AppenderV2 { return f(ctx) }

type teeTxn struct {
	fwdM  *Metrics
	items int
}

func (t *teeTxn) commit(store, fwd storage.AppenderTransaction) error {
	items := t.items
	t.items = 0
	if err := store.Commit(); err != nil {
		return errors.Join(err, fwd.Rollback())
	}
	err := fwd.Commit()
	if errors.Is(err, ErrQueueFull) {
		t.fwdM.dropFull(items)
		return nil
	}
	return err
}

type teeV1 struct {
	teeTxn
	store, fwd storage.Appender
}

// Series references are the store's; the forwarder needs none.
func (a *teeV1) Append(ref storage.SeriesRef, ls labels.Labels, t int64, v float64) (storage.SeriesRef, error) {
	ref, err := a.store.Append(ref, ls, t, v)
	if err == nil {
		a.items++
		_, err = a.fwd.Append(0, ls, t, v)
	}
	return ref, err
}

func (a *teeV1) AppendExemplar(ref storage.SeriesRef, ls labels.Labels, e exemplar.Exemplar) (storage.SeriesRef, error) {
	ref, err := a.store.AppendExemplar(ref, ls, e)
	if err == nil {
		_, err = a.fwd.AppendExemplar(0, ls, e)
	}
	return ref, err
}

func (a *teeV1) AppendHistogram(ref storage.SeriesRef, ls labels.Labels, t int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	ref, err := a.store.AppendHistogram(ref, ls, t, h, fh)
	if err == nil {
		a.items++
		_, err = a.fwd.AppendHistogram(0, ls, t, h, fh)
	}
	return ref, err
}

func (a *teeV1) AppendHistogramSTZeroSample(ref storage.SeriesRef, ls labels.Labels, t, st int64, h *histogram.Histogram, fh *histogram.FloatHistogram) (storage.SeriesRef, error) {
	return a.store.AppendHistogramSTZeroSample(ref, ls, t, st, h, fh)
}

func (a *teeV1) AppendSTZeroSample(ref storage.SeriesRef, ls labels.Labels, t, st int64) (storage.SeriesRef, error) {
	return a.store.AppendSTZeroSample(ref, ls, t, st)
}

func (a *teeV1) UpdateMetadata(ref storage.SeriesRef, ls labels.Labels, m metadata.Metadata) (storage.SeriesRef, error) {
	return a.store.UpdateMetadata(ref, ls, m)
}

func (a *teeV1) SetOptions(o *storage.AppendOptions) { a.store.SetOptions(o) }

func (a *teeV1) Commit() error { return a.commit(a.store, a.fwd) }

func (a *teeV1) Rollback() error {
	a.items = 0
	return errors.Join(a.store.Rollback(), a.fwd.Rollback())
}

type teeV2 struct {
	teeTxn
	store, fwd storage.AppenderV2
}

func (a *teeV2) Append(ref storage.SeriesRef, ls labels.Labels, st, t int64, v float64, h *histogram.Histogram, fh *histogram.FloatHistogram, opts storage.AppendV2Options) (storage.SeriesRef, error) {
	ref, err := a.store.Append(ref, ls, st, t, v, h, fh, opts)
	if err == nil {
		a.items++
		_, err = a.fwd.Append(0, ls, st, t, v, h, fh, opts)
	}
	return ref, err
}

func (a *teeV2) Commit() error { return a.commit(a.store, a.fwd) }

func (a *teeV2) Rollback() error {
	a.items = 0
	return errors.Join(a.store.Rollback(), a.fwd.Rollback())
}

// TeeLogs stores log lines, then forwards them. A partial success (lines the
// store refused for its own limits) forwards every line, as TeeTraces does.
func TeeLogs(store pipeline.Logs, fwd *Logs) pipeline.Logs {
	return logsFunc(func(ctx context.Context, req *logpush.Request) error {
		if fwd.Full() {
			return overloaded(ErrQueueFull)
		}
		// The store owns req once called: encode the copy first.
		n := req.Lines()
		body := lokiPush(req)
		err := store.ConsumeLogs(ctx, req)
		if _, partial := pipeline.AsPartial(err); err != nil && !partial {
			return err
		}
		if n > 0 {
			if ferr := appendCounted(fwd.queues, tenantOf(ctx), n, body); ferr != nil {
				return ferr
			}
		}
		return err
	})
}

type logsFunc func(context.Context, *logpush.Request) error

func (f logsFunc) ConsumeLogs(ctx context.Context, req *logpush.Request) error { return f(ctx, req) }
