package diskguard

import (
	"context"

	"github.com/prometheus/prometheus/storage"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
	"github.com/vispyr/vispyr/internal/pipeline/profile"
	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
)

// The decorators below put the guard in front of a store's append entry
// point: a refused write never reaches the store, so it neither decodes nor
// writes anything. store names the store in the refusal.

// Traces guards a trace consumer.
func (g *Guard) Traces(store string, next pipeline.Traces) pipeline.Traces {
	return pipeline.TracesFunc(func(ctx context.Context, td ptrace.Traces) error {
		if err := g.Check(store); err != nil {
			return err
		}
		return next.ConsumeTraces(ctx, td)
	})
}

// Metrics guards an OTLP metrics consumer.
func (g *Guard) Metrics(store string, next pipeline.Metrics) pipeline.Metrics {
	return metricsFunc(func(ctx context.Context, md pmetric.Metrics) error {
		if err := g.Check(store); err != nil {
			return err
		}
		return next.ConsumeMetrics(ctx, md)
	})
}

// Samples guards a remote-write consumer.
func (g *Guard) Samples(store string, next pipeline.Samples) pipeline.Samples {
	return samplesFunc(func(ctx context.Context, req *remotewrite.Request) (remotewrite.Written, error) {
		if err := g.Check(store); err != nil {
			return remotewrite.Written{}, err
		}
		return next.ConsumeSamples(ctx, req)
	})
}

// Profiles guards a profile consumer.
func (g *Guard) Profiles(store string, next pipeline.Profiles) pipeline.Profiles {
	return profilesFunc(func(ctx context.Context, b *profile.Batch) error {
		if err := g.Check(store); err != nil {
			return err
		}
		return next.ConsumeProfiles(ctx, b)
	})
}

// Logs guards a log consumer (Loki push, OTLP logs, Faro).
func (g *Guard) Logs(store string, next pipeline.Logs) pipeline.Logs {
	return logsFunc(func(ctx context.Context, req *logpush.Request) error {
		if err := g.Check(store); err != nil {
			return err
		}
		return next.ConsumeLogs(ctx, req)
	})
}

// Appendable guards the appenders of a TSDB used by in-process writers (the
// span-metrics generator): their Commit rolls back and fails while the disk
// is low.
func (g *Guard) Appendable(store string, next storage.Appendable) storage.Appendable {
	return appendable{g: g, store: store, next: next}
}

// AppendableV2 is Appendable for v2 appenders (scrapes and rule results).
func (g *Guard) AppendableV2(store string, next storage.AppendableV2) storage.AppendableV2 {
	return appendableV2{g: g, store: store, next: next}
}

type appendable struct {
	g     *Guard
	store string
	next  storage.Appendable
}

func (a appendable) Appender(ctx context.Context) storage.Appender {
	return guardedAppender{Appender: a.next.Appender(ctx), g: a.g, store: a.store}
}

type guardedAppender struct {
	storage.Appender
	g     *Guard
	store string
}

func (a guardedAppender) Commit() error {
	if err := a.g.Check(a.store); err != nil {
		_ = a.Appender.Rollback()
		return err
	}
	return a.Appender.Commit()
}

type appendableV2 struct {
	g     *Guard
	store string
	next  storage.AppendableV2
}

func (a appendableV2) AppenderV2(ctx context.Context) storage.AppenderV2 {
	return guardedAppenderV2{AppenderV2: a.next.AppenderV2(ctx), g: a.g, store: a.store}
}

type guardedAppenderV2 struct {
	storage.AppenderV2
	g     *Guard
	store string
}

func (a guardedAppenderV2) Commit() error {
	if err := a.g.Check(a.store); err != nil {
		_ = a.AppenderV2.Rollback()
		return err
	}
	return a.AppenderV2.Commit()
}

type metricsFunc func(context.Context, pmetric.Metrics) error

func (f metricsFunc) ConsumeMetrics(ctx context.Context, md pmetric.Metrics) error { return f(ctx, md) }

type samplesFunc func(context.Context, *remotewrite.Request) (remotewrite.Written, error)

func (f samplesFunc) ConsumeSamples(ctx context.Context, req *remotewrite.Request) (remotewrite.Written, error) {
	return f(ctx, req)
}

type logsFunc func(context.Context, *logpush.Request) error

func (f logsFunc) ConsumeLogs(ctx context.Context, req *logpush.Request) error { return f(ctx, req) }

type profilesFunc func(context.Context, *profile.Batch) error

func (f profilesFunc) ConsumeProfiles(ctx context.Context, b *profile.Batch) error { return f(ctx, b) }
