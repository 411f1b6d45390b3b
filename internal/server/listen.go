package server

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/limits"
)

// timeouts bound how long one connection may hold a server: a client that
// sends its headers or body slowly, or never reads the answer, is cut off
// instead of pinning a goroutine and its buffers for ever.
type timeouts struct {
	// read covers headers and body: ingest bodies of up to 64 MiB get a
	// minute, query requests (small) half of it.
	read time.Duration
	// write runs from the end of the headers to the end of the answer, so it
	// must cover the longest query the port serves.
	write time.Duration
}

const (
	readHeaderTimeout = 10 * time.Second
	idleTimeout       = 2 * time.Minute
	ingestRead        = time.Minute
	queryRead         = 30 * time.Second
	// queryWrite covers TraceQL and profile queries, which have no timeout of
	// their own, and the admin port's 30 s CPU profile.
	queryWrite = 5 * time.Minute
)

// serverTimeouts returns each server's timeouts; the Prometheus port serves
// remote write and PromQL, so it gets the ingest read and the query write.
func serverTimeouts(name string, cfg config.Config) timeouts {
	promWrite := max(cfg.Metrics.QueryTimeout+30*time.Second, ingestRead+30*time.Second)
	switch name {
	case "otlp_http", "pyroscope_ingest", "faro":
		return timeouts{read: ingestRead, write: ingestRead + 30*time.Second}
	case "prometheus":
		return timeouts{read: ingestRead, write: promWrite}
	case "pyroscope", "loki":
		return timeouts{read: ingestRead, write: queryWrite}
	case "ui":
		return timeouts{read: queryRead, write: max(queryWrite, promWrite)}
	default: // tempo, admin, health
		return timeouts{read: queryRead, write: queryWrite}
	}
}

func newHTTPServer(h http.Handler, t timeouts) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       t.read,
		WriteTimeout:      t.write,
		IdleTimeout:       idleTimeout,
	}
}

// limitHTTP bounds the connections per client IP on an HTTP listener; those
// over the limit read a 429 with Retry-After (with TLS they are just closed:
// the limit applies before the handshake).
func limitHTTP(ln net.Listener, lim config.Limits, tls bool) net.Listener {
	refuse := limits.RefuseHTTP
	if tls {
		refuse = nil
	}
	return limits.LimitPerClient(ln, lim.MaxConnectionsPerClient, refuse)
}

// grpcOptions are the OTLP/gRPC server's limits: message size, streams per
// connection, and keepalive both ways (idle and dead connections are closed,
// clients pinging more often than every 10 s are sent away, as the
// Collector's receiver allows by default).
func grpcOptions(lim config.Limits) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(int(lim.MaxRequestBytes)),
		grpc.MaxConcurrentStreams(100),
		grpc.ConnectionTimeout(readHeaderTimeout),
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{MinTime: 10 * time.Second, PermitWithoutStream: true}),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle: 5 * time.Minute,
			Time:              time.Minute,
			Timeout:           20 * time.Second,
		}),
	}
}

// setMemoryLimit makes limits.max_memory_bytes the Go runtime's soft memory
// limit, so garbage (a request's buffers once answered) is collected before
// the heap grows past the ceiling rather than at twice the live heap, and
// keeps the collector's headroom below the ceiling at a quarter of the live
// heap (limits.TuneGC) until ctx ends.
func setMemoryLimit(ctx context.Context, lim config.Limits, logger *slog.Logger) {
	limits.TuneGC(ctx, logger)
	n := lim.MaxMemoryBytes
	if n == 0 {
		n = limits.DefaultMemoryLimit()
	}
	if n <= 0 {
		return
	}
	debug.SetMemoryLimit(n)
	logger.Info("memory ceiling", "max_memory_bytes", n)
}

// releaseStartupPages gives back the binary's pages once start-up is over
// (limits.ReleaseBinaryPages): what serving runs comes back at its next
// use.
func releaseStartupPages(logger *slog.Logger) {
	if _, err := limits.ReleaseBinaryPages(logger); err != nil && !errors.Is(err, syscall.EINVAL) {
		logger.Warn("could not release the binary's start-up pages; it only costs memory", "err", err)
	}
}
