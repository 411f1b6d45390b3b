package otlp

import (
	"bytes"
	"context"
	"io"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	grpcencoding "google.golang.org/grpc/encoding"
	"google.golang.org/grpc/stats"

	"github.com/vispyr/vispyr/internal/limits"
)

// encodings records the grpc-encoding of every request the server reads, so
// a test knows the body really travelled compressed.
type encodings struct {
	mu   sync.Mutex
	seen []string
}

func (e *encodings) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }
func (e *encodings) HandleRPC(_ context.Context, s stats.RPCStats) {
	if h, ok := s.(*stats.InHeader); ok {
		e.mu.Lock()
		e.seen = append(e.seen, h.Compression)
		e.mu.Unlock()
	}
}
func (e *encodings) TagConn(ctx context.Context, _ *stats.ConnTagInfo) context.Context { return ctx }
func (e *encodings) HandleConn(context.Context, stats.ConnStats)                       {}

func (e *encodings) last() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.seen) == 0 {
		return ""
	}
	return e.seen[len(e.seen)-1]
}

func startGRPC(t *testing.T, rec *recorder) (string, *encodings) {
	t.Helper()
	enc := &encodings{}
	srv := grpc.NewServer(grpc.StatsHandler(enc))
	RegisterGRPC(srv, rec, rec, limits.NewInflight(1<<30))
	return serveGRPC(t, srv), enc
}

// The OTel Go SDK's gRPC exporters, configured as users configure them
// (OTEL_EXPORTER_OTLP_COMPRESSION=gzip), deliver spans and metric points
// compressed; zstd and snappy, which the Go SDK does not offer but the
// Collector's and Alloy's exporters do, arrive through pdata's gRPC client
// (what the Collector's exporter uses) with the compressor named.
func TestGRPCAcceptsCompressedExports(t *testing.T) {
	ctx := context.Background()
	t.Run("gzip from the SDK", func(t *testing.T) {
		rec := &recorder{}
		addr, enc := startGRPC(t, rec)
		t.Setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
		texp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(addr), otlptracegrpc.WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(texp))
		_, span := tp.Tracer("test").Start(ctx, "GET /cart")
		span.SetAttributes(attribute.String("http.route", strings.Repeat("cart/", 200)))
		span.End()
		if err := tp.Shutdown(ctx); err != nil {
			t.Fatalf("export spans: %v", err)
		}
		if rec.spans != 1 || enc.last() != "gzip" {
			t.Fatalf("spans=%d, request encoding %q", rec.spans, enc.last())
		}
		mexp, err := otlpmetricgrpc.New(ctx, otlpmetricgrpc.WithEndpoint(addr), otlpmetricgrpc.WithInsecure())
		if err != nil {
			t.Fatal(err)
		}
		mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewPeriodicReader(mexp)))
		c, _ := mp.Meter("test").Int64Counter("requests")
		c.Add(ctx, 3)
		if err := mp.Shutdown(ctx); err != nil {
			t.Fatalf("export metrics: %v", err)
		}
		if rec.points != 1 || enc.last() != "gzip" {
			t.Fatalf("points=%d, request encoding %q", rec.points, enc.last())
		}
	})
	for _, name := range []string{"zstd", "snappy", "gzip"} {
		t.Run(name+" from pdata", func(t *testing.T) {
			rec := &recorder{}
			addr, enc := startGRPC(t, rec)
			conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
				grpc.WithDefaultCallOptions(grpc.UseCompressor(name)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			if _, err := ptraceotlp.NewGRPCClient(conn).Export(ctx, ptraceotlp.NewExportRequestFromTraces(sampleTraces(50))); err != nil {
				t.Fatalf("export spans: %v", err)
			}
			if _, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(sampleMetrics())); err != nil {
				t.Fatalf("export metrics: %v", err)
			}
			if rec.spans != 50 || rec.points != 1 || enc.last() != name {
				t.Fatalf("spans=%d points=%d, request encoding %q", rec.spans, rec.points, enc.last())
			}
		})
	}
}

// FuzzGRPCDecompressors feeds arbitrary bytes to the zstd and snappy
// decompressors grpc calls, through the same size bound grpc puts on them:
// an error or bytes, never a panic, never more than the bound.
func FuzzGRPCDecompressors(f *testing.F) {
	for _, name := range []string{"zstd", "snappy"} {
		var buf bytes.Buffer
		w, _ := grpcencoding.GetCompressor(name).Compress(&buf)
		_, _ = w.Write([]byte("a span, a span, a span, a span"))
		_ = w.Close()
		f.Add(name == "zstd", buf.Bytes())
	}
	f.Add(true, []byte{0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x58})
	f.Add(false, []byte{0xff, 0x06, 0x00, 0x00, 's', 'N', 'a', 'P', 'p', 'Y'})
	const bound = 1 << 20
	f.Fuzz(func(t *testing.T, zstd bool, data []byte) {
		name := "snappy"
		if zstd {
			name = "zstd"
		}
		r, err := grpcencoding.GetCompressor(name).Decompress(bytes.NewReader(data))
		if err != nil {
			return
		}
		if c, ok := r.(io.Closer); ok {
			defer c.Close()
		}
		out, _ := io.ReadAll(io.LimitReader(r, bound+1))
		if len(out) > bound+1 {
			t.Fatalf("read %d bytes past the bound", len(out))
		}
	})
}
