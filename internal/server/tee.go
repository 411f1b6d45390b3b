package server

import (
	"context"
	"log/slog"
	"time"

	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/diskguard"
	"github.com/vispyr/vispyr/internal/forward"
	"github.com/vispyr/vispyr/internal/metrics"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// serveTee puts serve's forward: destinations behind its stores: each
// method returns the store's ingest path unchanged when no destination
// takes the signal.
type serveTee struct {
	fwd    *forward.Forwarder
	logger *slog.Logger
}

func (t serveTee) traces(store pipeline.Traces) pipeline.Traces {
	if t.fwd.Traces == nil {
		return store
	}
	return forward.TeeTraces(store, t.fwd.Traces)
}

// rowTraces is serve's trace path for requests that come as their bytes:
// the store, the forward copy and the generator from one decode into rows,
// with slow, the same path over pdata, for everything else.
func (t serveTee) rowTraces(guard *diskguard.Guard, store, gen pipeline.Rows, slow pipeline.Traces) *pipeline.RowTraces {
	r := &pipeline.RowTraces{Store: store, After: gen, Traces: slow,
		Admit: func(context.Context) error { return guard.Check("trace") }}
	if f := t.fwd.Traces; f != nil {
		r.Forward = f
		r.Admit = func(ctx context.Context) error {
			if err := f.Admit(ctx); err != nil {
				return err
			}
			return guard.Check("trace")
		}
	}
	return r
}

func (t serveTee) metrics(store pipeline.Metrics, lookback time.Duration) pipeline.Metrics {
	if t.fwd.Metrics == nil {
		return store
	}
	return forward.TeeMetrics(store, t.fwd.Metrics, forward.NewOTLPMetrics(t.fwd.Metrics, lookback, t.logger.With("component", "forward-otlp-metrics")))
}

// samples forwards remote write through the same rules as the gateway's
// (its counters stay unregistered: the store's count the requests).
func (t serveTee) samples(store pipeline.Samples) pipeline.Samples {
	if t.fwd.Metrics == nil {
		return store
	}
	rw := metrics.NewRemoteWriteAppender(t.fwd.Metrics, t.logger.With("component", "forward-remote-write"), nil)
	return forward.TeeSamples(store, rw, t.fwd.Metrics)
}

func (t serveTee) profiles(store pipeline.Profiles) pipeline.Profiles {
	if t.fwd.Profiles == nil {
		return store
	}
	return forward.TeeProfiles(store, t.fwd.Profiles)
}

func (t serveTee) appendable(store storage.Appendable) storage.Appendable {
	if t.fwd.Metrics == nil {
		return store
	}
	return forward.TeeAppendable(store, t.fwd.Metrics)
}

func (t serveTee) appendableV2(store storage.AppendableV2) storage.AppendableV2 {
	if t.fwd.Metrics == nil {
		return store
	}
	return forward.TeeAppendableV2(store, t.fwd.Metrics)
}

func (t serveTee) logs(store pipeline.Logs) pipeline.Logs {
	if t.fwd.Logs == nil {
		return store
	}
	return forward.TeeLogs(store, t.fwd.Logs)
}
