package harness

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/testpeer"
)

// Peer is a running real peer program listening on a loopback port.
type Peer struct {
	*Process
	Addr string // host:port it serves HTTP on
}

// URL returns the peer's base URL plus path.
func (p *Peer) URL(path string) string { return "http://" + p.Addr + path }

func loopback(t testing.TB) string {
	return "127.0.0.1:" + strconv.Itoa(testpeer.FreePort(t))
}

// StartNodeExporter runs Debian's prometheus-node-exporter with a few cheap
// collectors (cpu, meminfo, loadavg) and waits until it serves /metrics.
func StartNodeExporter(t testing.TB) *Peer {
	t.Helper()
	bin := testpeer.Binary(t, "prometheus-node-exporter")
	addr := loopback(t)
	p := StartProcess(t, "node-exporter", bin,
		"--web.listen-address="+addr,
		"--collector.disable-defaults",
		"--collector.cpu", "--collector.meminfo", "--collector.loadavg",
	)
	testpeer.WaitHTTP(t, "http://"+addr+"/metrics", 30*time.Second)
	return &Peer{Process: p, Addr: addr}
}

// StartPrometheus runs Debian's prometheus with config (YAML) on a temp
// storage dir and waits until /-/ready. extra flags are appended; with
// "--enable-feature=agent" it runs in agent mode (scrape and remote-write
// only, like Grafana Alloy).
func StartPrometheus(t testing.TB, config string, extra ...string) *Peer {
	t.Helper()
	bin := testpeer.Binary(t, "prometheus")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatalf("write prometheus config: %v", err)
	}
	addr := loopback(t)
	storage := "--storage.tsdb.path="
	if slices.Contains(extra, "--enable-feature=agent") {
		storage = "--storage.agent.path="
	}
	args := append([]string{
		"--config.file=" + cfg,
		storage + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr,
	}, extra...)
	p := StartProcess(t, "prometheus", bin, args...)
	testpeer.WaitHTTP(t, "http://"+addr+"/-/ready", 60*time.Second)
	return &Peer{Process: p, Addr: addr}
}

// StartVictoriaMetrics runs Debian's single-node victoria-metrics on a temp
// storage dir, with the query cache off and no latency offset so that what
// was just written is answered, and waits until /health answers.
func StartVictoriaMetrics(t testing.TB, extra ...string) *Peer {
	t.Helper()
	return StartVictoriaMetricsAt(t, loopback(t), filepath.Join(t.TempDir(), "vm"), extra...)
}

// StartVictoriaMetricsAt is StartVictoriaMetrics on a given address and
// storage dir, to start it again after stopping it.
func StartVictoriaMetricsAt(t testing.TB, addr, dir string, extra ...string) *Peer {
	t.Helper()
	bin := testpeer.Binary(t, "victoria-metrics")
	args := append([]string{
		"-httpListenAddr=" + addr,
		"-storageDataPath=" + dir,
		"-retentionPeriod=1",
		"-search.disableCache",
		"-search.latencyOffset=0s",
	}, extra...)
	p := StartProcess(t, "victoria-metrics", bin, args...)
	testpeer.WaitHTTP(t, "http://"+addr+"/health", 60*time.Second)
	return &Peer{Process: p, Addr: addr}
}

// StartVictoriaLogs runs VictoriaLogs (.ci/install.d/45-logs.sh) on a temp
// storage dir and waits until /health answers. It takes Loki pushes at
// /insert/loki/api/v1/push and answers LogsQL at /select/logsql/.
func StartVictoriaLogs(t testing.TB) *Peer {
	t.Helper()
	bin := testpeer.Binary(t, "victoria-logs")
	addr := loopback(t)
	p := StartProcess(t, "victoria-logs", bin, "-httpListenAddr="+addr,
		"-storageDataPath="+filepath.Join(t.TempDir(), "vlogs"), "-retentionPeriod=30d", "-loggerLevel=WARN")
	testpeer.WaitHTTP(t, "http://"+addr+"/health", 60*time.Second)
	return &Peer{Process: p, Addr: addr}
}

// StartAlertmanager runs Debian's prometheus-alertmanager with config (YAML)
// on a temp storage dir, without clustering, and waits until /-/ready.
func StartAlertmanager(t testing.TB, config string) *Peer {
	t.Helper()
	bin := testpeer.Binary(t, "prometheus-alertmanager")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(cfg, []byte(config), 0o644); err != nil {
		t.Fatalf("write alertmanager config: %v", err)
	}
	addr := loopback(t)
	p := StartProcess(t, "alertmanager", bin,
		"--config.file="+cfg,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
	)
	testpeer.WaitHTTP(t, "http://"+addr+"/-/ready", 30*time.Second)
	return &Peer{Process: p, Addr: addr}
}
