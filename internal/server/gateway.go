package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vispyr/vispyr/internal/admin"
	"github.com/vispyr/vispyr/internal/auth"
	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/diskguard"
	"github.com/vispyr/vispyr/internal/forward"
	"github.com/vispyr/vispyr/internal/generator"
	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/metrics"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
	"github.com/vispyr/vispyr/internal/pipeline/profile"
	"github.com/vispyr/vispyr/internal/receiver/loki"
	"github.com/vispyr/vispyr/internal/receiver/otlp"
	"github.com/vispyr/vispyr/internal/receiver/promwrite"
	"github.com/vispyr/vispyr/internal/receiver/pyroscope"
)

// RunGateway runs `vispyr gateway`: the receivers, limits and span-metrics
// generator of serve, forwarding everything through durable queues instead
// of storing it. The query APIs and UI are not served.
func RunGateway(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	started := time.Now()
	if cfg.Forward.Empty() {
		return errors.New("gateway: no forward destination: set --forward.metrics.url, --forward.traces.url, --forward.profiles.url, --forward.logs.url or forward: in the config")
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ready := &admin.Readiness{}
	inflight := limits.NewInflight(cfg.Limits.MaxInflightBytes)
	authn, err := auth.New(cfg.Auth)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	l := cfg.Listen
	warnUnauthenticated([]string{l.OTLPGRPC, l.OTLPHTTP, l.Prometheus, l.Pyroscope, l.PyroscopeIngest, l.Loki, l.Admin}, authn, logger)
	setMemoryLimit(ctx, cfg.Limits, logger)
	serverTLS, certs, err := listenerTLS(cfg, logger)
	if err != nil {
		return err
	}

	// The disk guard looks before any forward queue opens.
	guard, err := openDataDir(cfg, ready, logger, reg)
	if err != nil {
		return err
	}
	// The queues first: nothing listens before they are replayed.
	fwd, err := openForwarder(cfg, guard, logger, reg)
	if err != nil {
		return err
	}
	defer func() {
		if err := fwd.Close(); err != nil {
			logger.Error("close forward queues", "err", err)
		}
	}()

	var traceSink pipeline.Traces
	var gen *generator.Generator
	if fwd.Traces != nil {
		traceSink = fwd.Traces
	}
	if fwd.Metrics != nil && cfg.Generator.Enabled() {
		// Span metrics and the service graph are forwarded as metrics; the
		// queues acknowledge first, so only accepted spans are counted.
		// Without the generator, trace requests pass as their bytes.
		gen = generator.New(cfg.Generator, fwd.Metrics, logger.With("component", "generator"), reg)
		// With it, they are decoded once, straight into the rows it reads.
		rows := &pipeline.RowTraces{After: gen, Traces: gen}
		if fwd.Traces != nil {
			rows.Forward = fwd.Traces
			rows.Traces = pipeline.FanOutTraces{fwd.Traces, gen}
		}
		traceSink = rows
	}
	var metricSink pipeline.Metrics
	var rw http.Handler
	if fwd.Metrics != nil {
		metricSink = forward.NewOTLPMetrics(fwd.Metrics, cfg.Metrics.LookbackDelta, logger.With("component", "otlp-metrics"))
		// The remote-write rules (validation, partial writes) are the metrics
		// store's; the forwarder stands behind them as the appendable.
		rwSink := metrics.NewRemoteWriteAppender(fwd.Metrics, logger.With("component", "remote-write"), reg)
		rw = promwrite.NewHandler(rwSink, promwrite.Options{
			MaxRequestBytes: cfg.Limits.MaxRequestBytes, MaxSeriesPerRequest: cfg.Limits.MaxSeriesPerRequest, Inflight: inflight,
		}, logger.With("component", "remote-write"), reg)
	}
	var logSink pipeline.Logs = refuseLogs{}
	if fwd.Logs != nil {
		logSink = fwd.Logs
	}
	lokiPush := http.NewServeMux()
	loki.NewHandler(logSink, cfg.Limits.MaxRequestBytes, logger.With("component", "loki-push")).Register(lokiPush)
	var profileSink pipeline.Profiles = refuseProfiles{}
	if fwd.Profiles != nil {
		profileSink = fwd.Profiles
	}
	profileIngest := pyroscope.NewHandler(profileSink, logger.With("component", "pyroscope-ingest"), reg,
		pyroscope.WithInflight(inflight), pyroscope.WithTenantMaxSamples(cfg.Limits.ProfileSamples))
	traceSink, metricSink = refuseMissing(traceSink, metricSink)
	otlpHTTP := otlp.NewHTTP(traceSink, metricSink, cfg.Limits.MaxRequestBytes, inflight, logger.With("component", "otlp"), otlp.WithRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"transport": "http"}, reg)), otlp.WithLogs(logSink))
	grpcOpts := grpcOptions(cfg.Limits)
	if authn != nil {
		grpcOpts = append(grpcOpts, authn.GRPCOptions(grpcScope)...)
	}
	if serverTLS != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(serverTLS.Config("h2"))))
	}
	grpcServer := grpc.NewServer(grpcOpts...)
	otlp.RegisterGRPC(grpcServer, traceSink, metricSink, inflight, otlp.WithRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"transport": "grpc"}, reg)), otlp.WithLogs(logSink))

	promPort := http.NewServeMux()
	if rw != nil {
		promPort.Handle("POST /api/v1/write", rw)
		promPort.Handle("POST /api/v1/metrics/write", rw)
		promPort.Handle("POST /api/v1/otlp/v1/metrics", otlpHTTP.MetricsHandler())
	}
	servers := []httpServer{
		{"otlp_http", cfg.Listen.OTLPHTTP, otlpHTTP.Handler()},
		{"prometheus", cfg.Listen.Prometheus, promPort},
		{"pyroscope", cfg.Listen.Pyroscope, profileIngest},
		{"pyroscope_ingest", cfg.Listen.PyroscopeIngest, profileIngest},
		{"loki", cfg.Listen.Loki, lokiPush},
		{"health", cfg.Listen.Health, admin.NewHealthHandler(ready, started)},
	}
	status := admin.Status{Started: started, DataDir: cfg.DataDir, Destinations: statusRows(fwd)}
	for _, s := range append(servers, httpServer{name: "otlp_grpc", addr: cfg.Listen.OTLPGRPC}) {
		if s.addr != "" {
			status.Listeners = append(status.Listeners, [2]string{s.name, s.addr})
		}
	}
	servers = append(servers, httpServer{"admin", cfg.Listen.Admin, admin.NewHandler(reg, ready, status)})

	var g run.Group
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	actors := map[string]func(context.Context) error{"forward": fwd.Run, "readiness": readiness(fwd, ready), "diskguard": guard.Run}
	if gen != nil {
		actors["generator"] = gen.Run
	}
	for name, fn := range actors {
		g.Add(func() error {
			if err := fn(bg); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		}, func(error) { stopBG() })
	}
	for _, s := range servers {
		if err := s.add(&g, cfg, serverTLS, authn, logger); err != nil {
			return err
		}
	}
	if err := addGRPC(&g, "otlp_grpc", cfg.Listen.OTLPGRPC, cfg.Limits, grpcServer, logger); err != nil {
		return err
	}
	runCtx, cancel := context.WithCancel(ctx)
	g.Add(func() error { <-runCtx.Done(); return nil }, func(error) { cancel() })

	if certs != nil {
		// The listeners are bound: the CA's challenge connections queue until they serve.
		go certs.Prefetch()
	}
	ready.SetReady(true)
	releaseStartupPages(logger)
	logger.Info("vispyr gateway is ready", "took", time.Since(started).Round(time.Millisecond), "data_dir", cfg.DataDir)
	err = g.Run()
	ready.SetReady(false)
	return err
}

// openForwarder opens the forward queues under <data dir>/forward.
func openForwarder(cfg config.Config, guard *diskguard.Guard, logger *slog.Logger, reg prometheus.Registerer) (*forward.Forwarder, error) {
	fc := cfg.Forward
	if err := fc.Validate(); err != nil {
		return nil, fmt.Errorf("forward.%w", err)
	}
	l := logger.With("component", "forward")
	open := forward.GuardQueues(forward.OpenWALQueue(l, reg), guard.Check)
	return forward.New(fc, filepath.Join(cfg.DataDir, "forward"), open, l, reg)
}

// readiness reports not ready while a forward queue is full, so a load
// balancer sends elsewhere.
func readiness(fwd *forward.Forwarder, ready *admin.Readiness) func(context.Context) error {
	return func(ctx context.Context) error {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
				reason := ""
				if fwd.Full() {
					reason = "a forward queue is full"
				}
				ready.SetCondition("forward", reason)
			}
		}
	}
}

func statusRows(fwd *forward.Forwarder) func() []admin.Destination {
	return func() []admin.Destination {
		var out []admin.Destination
		for _, s := range fwd.Status() {
			health := "healthy"
			switch {
			case s.Full:
				health = "queue full"
			case !s.Healthy:
				health = "failing: " + s.LastError
			}
			out = append(out, admin.Destination{Signal: s.Signal, Name: s.Name, URL: s.URL, Health: health,
				QueueBytes: s.QueueBytes, QueueRecords: s.QueueRecords, LastSuccess: s.LastSuccess})
		}
		return out
	}
}

// refuseMissing answers signals no destination takes with 400, rather than
// dropping them after a 2xx.
func refuseMissing(t pipeline.Traces, m pipeline.Metrics) (pipeline.Traces, pipeline.Metrics) {
	if t == nil {
		t = pipeline.TracesFunc(func(context.Context, ptrace.Traces) error {
			return pipeline.Invalid(errors.New("this gateway forwards no traces"))
		})
	}
	if m == nil {
		m = refuseMetrics{}
	}
	return t, m
}

type refuseLogs struct{}

func (refuseLogs) ConsumeLogs(context.Context, *logpush.Request) error {
	return pipeline.Invalid(errors.New("this gateway forwards no logs"))
}

type refuseProfiles struct{}

func (refuseProfiles) ConsumeProfiles(context.Context, *profile.Batch) error {
	return pipeline.Invalid(errors.New("this gateway forwards no profiles"))
}

type refuseMetrics struct{}

func (refuseMetrics) ConsumeMetrics(context.Context, pmetric.Metrics) error {
	return pipeline.Invalid(errors.New("this gateway forwards no metrics"))
}
