package harness

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/testpeer"
)

// Jaeger is a running Jaeger v2 (.ci/install.d/35-jaeger.sh) with in-memory
// storage: OTLP in on OTLPGRPCAddr and OTLPHTTPAddr, the query API
// (/api/v3/traces/{id}) on Addr.
type Jaeger struct {
	*Peer
	OTLPGRPCAddr, OTLPHTTPAddr string
}

// NewJaeger picks Jaeger's ports; Start runs it. A test can point senders at
// it before it runs (a destination that is down).
func NewJaeger(t testing.TB) *Jaeger {
	t.Helper()
	testpeer.Binary(t, "jaeger") // skip early when it is missing
	return &Jaeger{OTLPGRPCAddr: loopback(t), OTLPHTTPAddr: loopback(t), Peer: &Peer{Addr: loopback(t)}}
}

// StartJaeger runs Jaeger v2 on fresh loopback ports.
func StartJaeger(t testing.TB) *Jaeger {
	t.Helper()
	j := NewJaeger(t)
	j.Start(t)
	return j
}

// Start runs Jaeger without its self-telemetry listeners and waits until
// the query API answers.
func (j *Jaeger) Start(t testing.TB) {
	t.Helper()
	bin := testpeer.Binary(t, "jaeger")
	query, queryGRPC := j.Addr, loopback(t)
	cfg := fmt.Sprintf(`
service:
  extensions: [jaeger_storage, jaeger_query]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [batch]
      exporters: [jaeger_storage_exporter]
  telemetry:
    metrics:
      level: none
    logs:
      level: warn
extensions:
  jaeger_query:
    storage:
      traces: mem
    http:
      endpoint: %s
    grpc:
      endpoint: %s
  jaeger_storage:
    backends:
      mem:
        memory:
          max_traces: 100000
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: %s
      http:
        endpoint: %s
processors:
  batch:
    timeout: 100ms
exporters:
  jaeger_storage_exporter:
    trace_storage: mem
`, query, queryGRPC, j.OTLPGRPCAddr, j.OTLPHTTPAddr)
	file := filepath.Join(t.TempDir(), "jaeger.yaml")
	if err := os.WriteFile(file, []byte(cfg), 0o644); err != nil {
		t.Fatalf("write jaeger config: %v", err)
	}
	j.Process = StartProcess(t, "jaeger", bin, "--config", file)
	testpeer.WaitHTTP(t, "http://"+query+"/api/v3/services", 60*time.Second)
}

// StartCollector runs Jaeger v2, which is an OpenTelemetry Collector
// distribution (otlp receiver and exporters, batch, spanmetrics connector,
// prometheus exporter), on a plain Collector config, without its
// self-telemetry listener, and waits until it listens on addr.
func StartCollector(t testing.TB, config, addr string) *Process {
	t.Helper()
	bin := testpeer.Binary(t, "jaeger")
	file := filepath.Join(t.TempDir(), "collector.yaml")
	if err := os.WriteFile(file, []byte(config), 0o644); err != nil {
		t.Fatalf("write collector config: %v", err)
	}
	p := StartProcess(t, "collector", bin, "--config", file, "--set=service.telemetry.metrics.level=none")
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return p
		}
		if exited, err := p.Exited(); exited || time.Now().After(deadline) {
			t.Fatalf("collector not listening on %s (exited: %v %v)", addr, exited, err)
		}
	}
}
