package metrics

import (
	"context"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/remotewrite"
)

// tenantSamples is the store's remote-write path: one RemoteWriteAppender per
// tenant, since the series cache holds head references of one TSDB. The
// default tenant's is reached without a lock.
type tenantSamples struct {
	s      *Storage
	m      *rwMetrics
	logger *slog.Logger
	def    *RemoteWriteAppender
	gate   *appendGate

	mu       sync.RWMutex
	byTenant map[*tenantDB]*RemoteWriteAppender
}

// RemoteWriteAppender returns the remote-write append path into this store,
// which writes each request to the TSDB of the tenant in its context and
// applies that tenant's limits (its metrics are registered with reg: call it
// once). Refused samples are logged to logger (serve passes a rate-limited one).
func (s *Storage) RemoteWriteAppender(logger *slog.Logger, reg prometheus.Registerer) pipeline.Samples {
	ts := &tenantSamples{s: s, m: newRWMetrics(reg), logger: logger, byTenant: map[*tenantDB]*RemoteWriteAppender{},
		gate: newAppendGate(s.limits.MaxConcurrentAppends, reg)}
	ts.def = ts.newAppender(s.def)
	registerCacheGauge(reg, ts.cacheLen)
	return ts
}

func (ts *tenantSamples) newAppender(t *tenantDB) *RemoteWriteAppender {
	a := newRemoteWriteAppender(t.appendable(), ts.logger.With("tenant", t.id), ts.m, t.check)
	a.retention = ts.s.cfg.Retention
	if t.own != nil {
		a.lean = true
		size := func() int { return int(t.numSeries()) }
		a.cache1.size, a.cache2.size = size, size
	}
	return a
}

// ConsumeSamples checks the tenant's ingestion rate, then appends.
func (ts *tenantSamples) ConsumeSamples(ctx context.Context, req *remotewrite.Request) (remotewrite.Written, error) {
	t, a := ts.s.def, ts.def
	if id := pipeline.Tenant(ctx); id != pipeline.DefaultTenant {
		var err error
		if t, err = ts.s.tenant(id); err != nil {
			return remotewrite.Written{}, err
		}
		a = ts.appender(t)
	}
	if err := t.limits.admitRate(req.NumSamples() + req.NumExemplars()); err != nil {
		return remotewrite.Written{}, err
	}
	if err := ts.gate.enter(ctx); err != nil {
		return remotewrite.Written{}, err
	}
	defer ts.gate.leave()
	w, err := a.ConsumeSamples(ctx, req)
	if ts.s.watch.Load() != nil {
		ts.s.wrote(t.id, oldestInRequest(req))
	}
	return w, err
}

func (ts *tenantSamples) appender(t *tenantDB) *RemoteWriteAppender {
	ts.mu.RLock()
	a := ts.byTenant[t]
	ts.mu.RUnlock()
	if a != nil {
		return a
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if a = ts.byTenant[t]; a == nil {
		a = ts.newAppender(t)
		ts.byTenant[t] = a
	}
	return a
}

func (ts *tenantSamples) cacheLen() int {
	n := ts.def.cacheLen()
	ts.mu.RLock()
	defer ts.mu.RUnlock()
	for _, a := range ts.byTenant {
		n += a.cacheLen()
	}
	return n
}
