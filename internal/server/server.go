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
	"time"

	"github.com/oklog/run"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"google.golang.org/grpc"

	"github.com/vispyr/vispyr/internal/admin"
	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/metrics"
	"github.com/vispyr/vispyr/internal/receiver/otlp"
)

// Run serves until ctx is cancelled, then stops listeners first and closes the
// stores last, so every acknowledged write is flushed.
func Run(ctx context.Context, cfg config.Config, logger *slog.Logger) error {
	started := time.Now()
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	ready := &admin.Readiness{}
	inflight := limits.NewInflight(cfg.Limits.MaxInflightBytes)

	// Stores first: nothing listens before the WALs are replayed.
	metricStore, err := metrics.Open(cfg.Metrics, cfg.DataDir, logger.With("component", "metrics"), reg)
	if err != nil {
		return err
	}
	defer func() {
		if err := metricStore.Close(); err != nil {
			logger.Error("close metrics store", "err", err)
		}
	}()

	// Receivers and APIs.
	otlpHTTP := otlp.NewHTTP(nil, metricStore, cfg.Limits.MaxRequestBytes, inflight, logger.With("component", "otlp"))
	promAPI := metricStore.NewAPI(metrics.APIOptions{
		Metrics: cfg.Metrics, Limits: cfg.Limits, OTLP: otlpHTTP.MetricsHandler(), Inflight: inflight,
	}, logger, reg)

	grpcServer := grpc.NewServer(grpc.MaxRecvMsgSize(int(cfg.Limits.MaxRequestBytes)))
	otlp.RegisterGRPC(grpcServer, nil, metricStore, inflight)

	servers := []httpServer{
		{"otlp_http", cfg.Listen.OTLPHTTP, otlpHTTP.Handler()},
		{"prometheus", cfg.Listen.Prometheus, promAPI},
		{"admin", cfg.Listen.Admin, admin.NewHandler(reg, ready)},
		{"health", cfg.Listen.Health, admin.NewHealthHandler(ready, started)},
	}

	var g run.Group
	// Listen on every port before declaring ready, so a taken port fails start-up.
	for _, s := range servers {
		if err := s.add(&g, logger); err != nil {
			return err
		}
	}
	if err := addGRPC(&g, "otlp_grpc", cfg.Listen.OTLPGRPC, grpcServer, logger); err != nil {
		return err
	}
	// Cancellation: the first actor to return stops the rest, listeners first.
	runCtx, cancel := context.WithCancel(ctx)
	g.Add(func() error { <-runCtx.Done(); return nil }, func(error) { cancel() })

	ready.SetReady(true)
	logger.Info("vispyr is ready", "took", time.Since(started).Round(time.Millisecond), "data_dir", cfg.DataDir)
	err = g.Run()
	ready.SetReady(false)
	return err
}

type httpServer struct {
	name    string
	addr    string
	handler http.Handler
}

func (s httpServer) add(g *run.Group, logger *slog.Logger) error {
	if s.addr == "" || s.handler == nil {
		return nil
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("listen %s on %s: %w", s.name, s.addr, err)
	}
	srv := &http.Server{Handler: s.handler, ReadHeaderTimeout: 10 * time.Second}
	logger.Info("listening", "server", s.name, "address", ln.Addr().String())
	g.Add(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
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

func addGRPC(g *run.Group, name, addr string, srv *grpc.Server, logger *slog.Logger) error {
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen %s on %s: %w", name, addr, err)
	}
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
