// Package server wires Vispyr's components for `vispyr serve`: it opens the
// stores, builds the receivers and query APIs on top of them, listens on every
// configured port and shuts all of it down in order.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/prometheus/storage"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/vispyr/vispyr/internal/admin"
	"github.com/vispyr/vispyr/internal/auth"
	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/generator"
	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/lograte"
	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/logs/lokiapi"
	"github.com/vispyr/vispyr/internal/metrics"
	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/profiles/profilesapi"
	"github.com/vispyr/vispyr/internal/prommgr"
	"github.com/vispyr/vispyr/internal/receiver/faro"
	"github.com/vispyr/vispyr/internal/receiver/loki"
	"github.com/vispyr/vispyr/internal/receiver/otlp"
	"github.com/vispyr/vispyr/internal/receiver/promwrite"
	"github.com/vispyr/vispyr/internal/receiver/pyroscope"
	"github.com/vispyr/vispyr/internal/traces/tempoapi"
	"github.com/vispyr/vispyr/internal/ui"
)

// Run serves until ctx is cancelled, then stops listeners first and closes the
// stores last, so every acknowledged write is flushed.
func Run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	started := time.Now()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ready := &admin.Readiness{}
	inflight := limits.NewInflight(cfg.Limits.MaxInflightBytes)
	// TLS for every listener but health (nil: plain); a bad certificate fails start-up.
	serverTLS, certs, err := listenerTLS(cfg, logger)
	if err != nil {
		return err
	}
	authn, err := auth.New(cfg.Auth)
	if err != nil {
		return fmt.Errorf("auth: %w", err)
	}
	l := cfg.Listen
	warnUnauthenticated([]string{l.OTLPGRPC, l.OTLPHTTP, l.Prometheus, l.PyroscopeIngest, l.Pyroscope, l.Tempo, l.Loki, l.Faro, l.UI, l.Admin}, authn, logger)
	setMemoryLimit(ctx, cfg.Limits, logger)

	// The disk guard looks before any store opens.
	guard, err := openDataDir(cfg, ready, logger, reg)
	if err != nil {
		return err
	}
	// Receivers log a line per refused request or sample: at most one of each
	// kind per 10 s, with a count of the rest.
	ingestLogger := slog.New(lograte.New(logger.Handler(), 10*time.Second))
	// Stores first: nothing listens before the WALs are replayed.
	st, err := openStores(cfg, logger, reg)
	if err != nil {
		return err
	}
	defer st.close(logger)
	metricStore, traceStore, profileStore, logStore := st.metrics, st.traces, st.profiles, st.logs
	// A forward: section sends a copy of what the stores accept on.
	fwd, err := openForwarder(cfg, guard, logger, reg)
	if err != nil {
		return err
	}
	defer func() {
		if err := fwd.Close(); err != nil {
			logger.Error("close forward queues", "err", err)
		}
	}()
	tee := serveTee{fwd: fwd, logger: ingestLogger}

	// Span metrics and the service graph land in the metrics store.
	gen := generator.New(cfg.Generator, tee.appendable(guard.Appendable("metrics", metricStore)), logger.With("component", "generator"), reg)

	// Scraping, rules and alerting over the metrics store, from a prometheus.yml.
	// Alert links open the UI where people reach it unless told otherwise.
	promCfg := cfg.Prometheus
	if promCfg.ExternalURL == "" {
		promCfg.ExternalURL = cfg.UI.ExternalURL
	}
	promMgr, err := prommgr.New(prommgr.Options{
		Config: promCfg, DataDir: cfg.DataDir, AdminAddr: cfg.Listen.Admin, UIAddr: cfg.Listen.UI,
		PrometheusAddr: cfg.Listen.Prometheus,
		LookbackDelta:  cfg.Metrics.LookbackDelta, QueryTimeout: cfg.Metrics.QueryTimeout,
		RulesAfter: metricStore.Replayed(),
	}, guardedTSDB{tee.appendableV2(guard.AppendableV2("metrics", metricStore.DefaultAppendable())), metricStore.DefaultQueryable()}, logger.With("component", "prometheus"), reg)
	if err != nil {
		return err
	}

	// Receivers: the trace store acknowledges first, so the generator only counts
	// spans that were durably accepted.
	// Requests that come as bytes are decoded once, straight into the store's
	// rows, which the generator reads too.
	traceSink := tee.rowTraces(guard, traceStore, gen,
		pipeline.FanOutTraces{tee.traces(guard.Traces("trace", traceStore)), gen})
	metricSink := tee.metrics(guard.Metrics("metrics", metricStore), cfg.Metrics.LookbackDelta)
	logSink := tee.logs(guard.Logs("logs", logStore))
	otlpHTTP := otlp.NewHTTP(traceSink, metricSink, cfg.Limits.MaxRequestBytes, inflight, ingestLogger.With("component", "otlp"), otlp.WithRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"transport": "http"}, reg)), otlp.WithLogs(logSink))
	grpcOpts := grpcOptions(cfg.Limits)
	if authn != nil {
		grpcOpts = append(grpcOpts, authn.GRPCOptions(grpcScope)...)
	}
	if serverTLS != nil {
		grpcOpts = append(grpcOpts, grpc.Creds(credentials.NewTLS(serverTLS.Config("h2"))))
	}
	grpcServer := grpc.NewServer(grpcOpts...)
	otlp.RegisterGRPC(grpcServer, traceSink, metricSink, inflight, otlp.WithRegisterer(prometheus.WrapRegistererWith(prometheus.Labels{"transport": "grpc"}, reg)), otlp.WithLogs(logSink))
	profileIngest := pyroscope.NewHandler(tee.profiles(guard.Profiles("profile", profileStore)), ingestLogger.With("component", "pyroscope-ingest"), reg,
		pyroscope.WithInflight(inflight), pyroscope.WithTenantMaxSamples(cfg.Limits.ProfileSamples))

	// Query APIs, and the UI on top of the very same handlers.
	rwSink := metricStore.RemoteWriteAppender(ingestLogger.With("component", "remote-write"), reg)
	remoteWrite := promwrite.NewHandler(tee.samples(guard.Samples("metrics", rwSink)), promwrite.Options{
		MaxRequestBytes: cfg.Limits.MaxRequestBytes, MaxSeriesPerRequest: cfg.Limits.MaxSeriesPerRequest,
		Inflight: inflight,
	}, ingestLogger.With("component", "remote-write"), reg)
	// One memory budget for every running query, whatever its engine.
	queryMemory := limits.NewInflight(cfg.Metrics.QueryMemoryBytes)
	promAPI := metricStore.NewAPI(metrics.APIOptions{
		Metrics: cfg.Metrics, OTLP: otlpHTTP.MetricsHandler(), RemoteWrite: remoteWrite,
		Managers: promMgr, QueryMemory: queryMemory,
	}, logger, reg)
	tempoAPI := tempoapi.NewHandler(traceStore, logger.With("component", "tempo-api"),
		tempoapi.WithQueryMemory(cfg.Traces.QueryMaxMemoryBytes, queryMemory))
	profileAPI := profilesapi.NewHandler(profileStore, logger.With("component", "pyroscope-api"),
		profilesapi.WithQueryMemory(cfg.Profiles.QueryMaxMemoryBytes, queryMemory))
	lokiAPI := lokiPort(logStore, logSink, cfg, ingestLogger.With("component", "loki-push"), logger.With("component", "loki-api"))
	webUI := ui.NewHandler(ui.Backends{Prometheus: withoutIngest(promAPI), Tempo: tempoAPI, Pyroscope: profileAPI, Loki: withoutLokiPush(lokiAPI)}, logger.With("component", "ui"))

	// A browser opening the Prometheus, Tempo or Pyroscope port lands on the
	// matching UI page, as their own UIs would greet it.
	landing := ui.Landing{ExternalURL: cfg.UI.ExternalURL, UIAddr: cfg.Listen.UI, TLS: serverTLS != nil}
	toUI := func(h http.Handler, pages map[string]func(*http.Request) string) http.Handler {
		if cfg.Listen.UI == "" && cfg.UI.ExternalURL == "" {
			return h
		}
		return landing.Wrap(h, pages)
	}
	servers := []httpServer{
		{"otlp_http", cfg.Listen.OTLPHTTP, otlpHTTP.Handler()},
		{"prometheus", cfg.Listen.Prometheus, toUI(withReload(promAPI, promMgr), ui.PrometheusPages())},
		{"tempo", cfg.Listen.Tempo, toUI(tempoAPI, ui.PageAt("/traces"))},
		{"pyroscope", cfg.Listen.Pyroscope, toUI(pyroscopePort(profileIngest, profileAPI), ui.PageAt("/profiles"))},
		{"pyroscope_ingest", cfg.Listen.PyroscopeIngest, profileIngest},
		{"loki", cfg.Listen.Loki, lokiAPI},
		{"faro", cfg.Listen.Faro, faro.NewHandler(cfg.Faro, faro.Sinks{Logs: logSink, Traces: traceSink, Metrics: metricSink}, ingestLogger.With("component", "faro"))},
		{"ui", cfg.Listen.UI, webUI},
		// Health stays plain HTTP: it tells only up or down, and container
		// and load-balancer probes (`vispyr healthcheck`) speak plain HTTP.
		{"health", cfg.Listen.Health, admin.NewHealthHandler(ready, started)},
	}
	status := admin.Status{Started: started, DataDir: cfg.DataDir, Destinations: statusRows(fwd),
		MetricsReplayBytes: metricStore.ReplayPendingBytes}
	for _, s := range append(servers, httpServer{name: "otlp_grpc", addr: cfg.Listen.OTLPGRPC}) {
		if s.addr != "" {
			status.Listeners = append(status.Listeners, [2]string{s.name, s.addr})
		}
	}
	servers = append(servers, httpServer{"admin", cfg.Listen.Admin, withReload(admin.NewHandler(reg, ready, status), promMgr)})

	var g run.Group
	// Background work of the stores and the generator; the generator writes once
	// more when stopped, before the deferred closes above run.
	bg, stopBG := context.WithCancel(context.Background())
	defer stopBG()
	for name, fn := range map[string]func(context.Context) error{
		"traces": traceStore.Run, "profiles": profileStore.Run, "generator": gen.Run,
		"prometheus": promMgr.Run, "sighup": reloadOnSIGHUP(promMgr, logger), "diskguard": guard.Run,
		"forward": fwd.Run, "forward-readiness": readiness(fwd, ready),
	} {
		g.Add(func() error {
			if err := fn(bg); err != nil && !errors.Is(err, context.Canceled) {
				return fmt.Errorf("%s: %w", name, err)
			}
			return nil
		}, func(error) { stopBG() })
	}
	// Listen on every port before declaring ready, so a taken port fails start-up.
	for _, s := range servers {
		if err := s.add(&g, cfg, serverTLS, authn, logger); err != nil {
			return err
		}
	}
	if err := addGRPC(&g, "otlp_grpc", cfg.Listen.OTLPGRPC, cfg.Limits, grpcServer, logger); err != nil {
		return err
	}
	// Cancellation: the first actor to return stops the rest, listeners first.
	runCtx, cancel := context.WithCancel(ctx)
	g.Add(func() error { <-runCtx.Done(); return nil }, func(error) { cancel() })

	if certs != nil {
		// The listeners are bound: the CA's challenge connections queue until they serve.
		go certs.Prefetch()
	}
	ready.SetReady(true)
	releaseStartupPages(logger)
	logger.Info("vispyr is ready", "took", time.Since(started).Round(time.Millisecond), "data_dir", cfg.DataDir)
	err = g.Run()
	ready.SetReady(false)
	return err
}

// guardedTSDB is the metrics store as the Prometheus managers see it: scrapes
// and rule results are refused while the disk is nearly full, queries are not.
type guardedTSDB struct {
	storage.AppendableV2
	storage.Queryable
}

// withReload adds Prometheus's POST /-/reload to h.
func withReload(h http.Handler, m *prommgr.Manager) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/-/reload", m.ReloadHandler())
	mux.Handle("/", h)
	return mux
}

// reloadOnSIGHUP reloads the Prometheus configuration and rule files on
// SIGHUP, as Prometheus does.
func reloadOnSIGHUP(m *prommgr.Manager, logger *slog.Logger) func(context.Context) error {
	return func(ctx context.Context) error {
		hup := make(chan os.Signal, 1)
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
		for {
			select {
			case <-hup:
				if err := m.Reload(); err == nil {
					logger.Info("reloaded on SIGHUP")
				}
			case <-ctx.Done():
				return nil
			}
		}
	}
}

// lokiPort serves Loki's push and query APIs, as a Loki server does on 3100:
// pushes go to push (the store behind the disk guard), queries to store.
func lokiPort(store *logs.Store, push pipeline.Logs, cfg config.Config, pushLogger, queryLogger *slog.Logger) http.Handler {
	mux := http.NewServeMux()
	loki.NewHandler(push, cfg.Limits.MaxRequestBytes, pushLogger).Register(mux)
	lokiapi.New(store, cfg.Logs.Query, queryLogger).Register(mux)
	return mux
}

// pyroscopePort serves Pyroscope's query API and its ingest paths on one port, as
// a Pyroscope server does.
func pyroscopePort(ingest, query http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/ingest", ingest)
	mux.Handle("/pyroscope/ingest", ingest)
	mux.Handle("/push.v1.PusherService/", ingest)
	mux.Handle("/", query)
	return mux
}

type httpServer struct {
	name    string
	addr    string
	handler http.Handler
}

func (s httpServer) add(g *run.Group, cfg config.Config, serverTLS *auth.ServerTLS, authn *auth.Authenticator, logger *slog.Logger) error {
	if s.addr == "" || s.handler == nil {
		return nil
	}
	h := s.handler
	// Health tells only up or down and is probed without credentials.
	switch {
	case authn == nil || s.name == "health":
	case s.name == "ui":
		// Browsers log in once and carry a session cookie; API clients of
		// the UI port send credentials as on every other port.
		h = auth.NewSessions(authn, cfg.Auth.SessionTTL, serverTLS != nil).HTTP(routeScope(s.name), h)
	default:
		h = authn.HTTP(routeScope(s.name), h)
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen %s on %s: %w", s.name, s.addr, err)
	}
	tlsOn := serverTLS != nil && s.name != "health"
	ln = limitHTTP(ln, cfg.Limits, tlsOn)
	srv := newHTTPServer(h, serverTimeouts(s.name, cfg))
	serve := func() error { return srv.Serve(ln) }
	if tlsOn {
		srv.TLSConfig = serverTLS.Config(httpProtos(cfg)...)
		serve = func() error { return srv.ServeTLS(ln, "", "") }
	}
	logger.Info("listening", "server", s.name, "address", ln.Addr().String(), "tls", srv.TLSConfig != nil)
	g.Add(func() error {
		if err := serve(); !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve %s: %w", s.name, err)
		}
		return nil
	}, func(error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return nil
}

func addGRPC(g *run.Group, name, addr string, lim config.Limits, srv *grpc.Server, logger *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s on %s: %w", name, addr, err)
	}
	ln = limits.LimitPerClient(ln, lim.MaxConnectionsPerClient, nil)
	logger.Info("listening", "server", name, "address", ln.Addr().String())
	g.Add(func() error { return srv.Serve(ln) }, func(error) {
		done := make(chan struct{})
		go func() { srv.GracefulStop(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			srv.Stop()
		}
	})
	return nil
}
