// Package forward sends what Vispyr accepts on to other systems: metrics by
// Prometheus remote write (1.0 or 2.0), traces by OTLP (HTTP or gRPC),
// profiles by the Pyroscope push API, each destination behind its own
// durable queue. A sender's write is acknowledged
// once it is fsync'd in every destination's queue; shards then batch, send
// and retry it, and move the queue's cursor past what was delivered.
package forward

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/prompb"
)

// Forwarder owns every destination of a forward: configuration.
type Forwarder struct {
	// Metrics, Traces and Profiles are nil when no destination takes the signal.
	Metrics  *Metrics
	Traces   *Traces
	Profiles *Profiles
	Logs     *Logs

	runners []runner
	queues  []Queue
	closers []func() error
}

type runner interface {
	run(ctx context.Context) error
	status() DestinationStatus
}

// New opens a queue under dir/<signal>/<name> for every destination of a
// validated cfg.
func New(cfg Config, dir string, open OpenQueue, logger *slog.Logger, reg prometheus.Registerer) (f *Forwarder, err error) {
	f = &Forwarder{}
	defer func() {
		if err != nil {
			_ = f.Close()
		}
	}()
	m := newSelfMetrics(reg)
	openQ := func(signal string, d *Destination) (Queue, error) {
		q, err := open(filepath.Join(dir, signal, d.Name), d.Queue.MaxBytes)
		if err != nil {
			return nil, fmt.Errorf("open forward queue of %s destination %s: %w", signal, d.Name, err)
		}
		f.queues = append(f.queues, q)
		return q, nil
	}
	if len(cfg.Metrics) > 0 {
		f.Metrics = &Metrics{dropFull: m.dropFull("metrics", cfg.Metrics), groups: groupCount(cfg.Metrics), maxItems: cfg.Metrics[0].Queue.MaxBatchItems}
		for _, d := range cfg.Metrics {
			f.Metrics.maxItems = min(f.Metrics.maxItems, d.Queue.MaxBatchItems)
		}
	}
	for i := range cfg.Metrics {
		d := &cfg.Metrics[i]
		q, err := openQ("metrics", d)
		if err != nil {
			return nil, err
		}
		headers := rwHeadersV1
		if d.Protocol == "2.0" {
			headers = rwHeadersV2
		}
		s, err := newHTTPSender(d, d.URL, headers)
		if err != nil {
			return nil, err
		}
		f.Metrics.queues = append(f.Metrics.queues, q)
		f.runners = append(f.runners, newPipe[[]byte]("metrics", d, q, &rwCodec{v2: d.Protocol == "2.0", shards: d.Queue.Shards, maxItems: d.Queue.MaxBatchItems, families: map[string]prompb.MetricMetadata{}}, s.send, m, logger))
	}
	if len(cfg.Traces) > 0 {
		f.Traces = &Traces{}
	}
	for i := range cfg.Traces {
		d := &cfg.Traces[i]
		q, err := openQ("traces", d)
		if err != nil {
			return nil, err
		}
		send, closeFn, err := newOTLPSender(d)
		if err != nil {
			return nil, err
		}
		f.closers = append(f.closers, closeFn)
		f.Traces.queues = append(f.Traces.queues, q)
		f.runners = append(f.runners, newPipe[[]byte]("traces", d, q, &concatCodec{}, send, m, logger))
	}
	if len(cfg.Profiles) > 0 {
		f.Profiles = &Profiles{}
	}
	for i := range cfg.Profiles {
		d := &cfg.Profiles[i]
		q, err := openQ("profiles", d)
		if err != nil {
			return nil, err
		}
		send, err := newPushSender(d)
		if err != nil {
			return nil, err
		}
		f.Profiles.queues = append(f.Profiles.queues, q)
		f.runners = append(f.runners, newPipe[[]byte]("profiles", d, q, &concatCodec{}, send, m, logger))
	}
	if len(cfg.Logs) > 0 {
		f.Logs = &Logs{}
	}
	for i := range cfg.Logs {
		d := &cfg.Logs[i]
		q, err := openQ("logs", d)
		if err != nil {
			return nil, err
		}
		send, err := newLokiSender(d)
		if err != nil {
			return nil, err
		}
		f.Logs.queues = append(f.Logs.queues, q)
		f.runners = append(f.runners, newPipe[[]byte]("logs", d, q, &concatCodec{}, send, m, logger))
	}
	return f, nil
}

// Run delivers every queue until ctx is done.
func (f *Forwarder) Run(ctx context.Context) error {
	if len(f.runners) == 0 {
		// Nothing to deliver (serve without forward:): run until stopped,
		// like every other actor.
		<-ctx.Done()
		return nil
	}
	var wg sync.WaitGroup
	errs := make([]error, len(f.runners))
	for i, r := range f.runners {
		wg.Go(func() { errs[i] = r.run(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Close closes the queues and connections; call it after Run returned.
func (f *Forwarder) Close() error {
	var errs []error
	for _, c := range f.closers {
		errs = append(errs, c())
	}
	for _, q := range f.queues {
		errs = append(errs, q.Close())
	}
	return errors.Join(errs...)
}

// Full reports whether a destination's queue is full: the process then sheds
// load and reports not ready.
func (f *Forwarder) Full() bool {
	for _, q := range f.queues {
		if q.Full() {
			return true
		}
	}
	return false
}

// Status returns every destination's health and backlog, for the status page.
func (f *Forwarder) Status() []DestinationStatus {
	out := make([]DestinationStatus, len(f.runners))
	for i, r := range f.runners {
		out[i] = r.status()
	}
	return out
}
