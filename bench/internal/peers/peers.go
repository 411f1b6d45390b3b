// Package peers starts the systems the benchmarks compare, each on its own
// dir (data under <dir>/data) and free loopback ports: `vispyr serve`,
// `vispyr gateway`, Prometheus (2.42, remote-write receiver on) and
// VictoriaMetrics (1.79).
package peers

import (
	"os"
	"os/exec"
	"path/filepath"

	"github.com/vispyr/vispyr/bench/internal/proc"
)

// Started is a running system and where to reach it.
type Started struct {
	*proc.Server
	WriteURL string // Prometheus remote write (v1)
	ReadyURL string // 200 once ready
	APIURL   string // base of the Prometheus query API
	OTLPGRPC string // host:port of OTLP gRPC (Vispyr only)
}

// vispyrListeners are the `vispyr serve` address flags, each given a free port.
var vispyrListeners = []string{"metrics.listen-address", "otlp.grpc-address", "otlp.http-address",
	"admin.listen-address", "health.listen-address", "tempo.listen-address",
	"pyroscope.listen-address", "pyroscope.ingest-address", "loki.listen-address", "faro.listen-address", "ui.listen-address"}

// gatewayListeners are the `vispyr gateway` address flags.
var gatewayListeners = []string{"metrics.listen-address", "otlp.grpc-address", "otlp.http-address",
	"admin.listen-address", "health.listen-address", "pyroscope.listen-address", "pyroscope.ingest-address",
	"loki.listen-address"}

// Vispyr starts `bin serve` with extra flags appended.
func Vispyr(bin, dir string, extra ...string) (*Started, error) {
	return startVispyr(bin, "serve", vispyrListeners, dir, extra)
}

// Gateway starts `bin gateway` with extra flags (its forward destinations) appended.
func Gateway(bin, dir string, extra ...string) (*Started, error) {
	return startVispyr(bin, "gateway", gatewayListeners, dir, extra)
}

func startVispyr(bin, command string, listeners []string, dir string, extra []string) (*Started, error) {
	addrs := map[string]string{}
	args := []string{command, "--data-dir=" + filepath.Join(dir, "data")}
	for _, f := range listeners {
		a, err := proc.FreeAddr()
		if err != nil {
			return nil, err
		}
		addrs[f] = a
		args = append(args, "--"+f+"="+a)
	}
	srv, err := proc.Start(filepath.Join(dir, "vispyr.log"), bin, append(args, extra...)...)
	if err != nil {
		return nil, err
	}
	m := "http://" + addrs["metrics.listen-address"]
	return &Started{Server: srv, WriteURL: m + "/api/v1/write", ReadyURL: "http://" + addrs["admin.listen-address"] + "/-/ready",
		APIURL: m, OTLPGRPC: addrs["otlp.grpc-address"]}, nil
}

// Prometheus starts bin with an empty configuration, the remote-write
// receiver and the admin API (snapshots) on, and extra flags appended.
func Prometheus(bin, dir string, extra ...string) (*Started, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("global: {}\n"), 0o644); err != nil {
		return nil, err
	}
	args := []string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--web.enable-remote-write-receiver", "--web.enable-admin-api"}
	srv, err := proc.Start(filepath.Join(dir, "prometheus.log"), bin, append(args, extra...)...)
	if err != nil {
		return nil, err
	}
	u := "http://" + addr
	return &Started{Server: srv, WriteURL: u + "/api/v1/write", ReadyURL: u + "/-/ready", APIURL: u}, nil
}

// VictoriaMetrics starts bin with unlimited retention and extra flags appended.
func VictoriaMetrics(bin, dir string, extra ...string) (*Started, error) {
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, err
	}
	args := []string{"-storageDataPath=" + filepath.Join(dir, "data"), "-httpListenAddr=" + addr, "-retentionPeriod=100y"}
	srv, err := proc.Start(filepath.Join(dir, "victoria-metrics.log"), bin, append(args, extra...)...)
	if err != nil {
		return nil, err
	}
	u := "http://" + addr
	return &Started{Server: srv, WriteURL: u + "/api/v1/write", ReadyURL: u + "/health", APIURL: u}, nil
}

// LookPath is bin's path on $PATH, else bin as given.
func LookPath(bin string) string {
	if p, err := exec.LookPath(bin); err == nil {
		return p
	}
	return bin
}
