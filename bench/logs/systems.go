package main

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/bench/internal/proc"
)

// system is one log store under test: how to start it, where it takes Loki
// push, how it runs the two queries, and where its data is on disk.
type system struct {
	name, bin string
	start     func(bin, dir string) (*proc.Server, string, error) // returns the base URL
	pushPath  string
	flush     func(base string) error // make every acknowledged line searchable and on disk
	stop      syscall.Signal
	needle    func(base string, l *Load, svc string) (int, error)
	byLevel   func(base string, l *Load) (float64, error) // lines the per-level rate adds up to
	dataDir   string                                      // under the run's dir
}

func vispyrSystem(bin string) *system {
	return &system{name: "vispyr", bin: bin, start: startVispyr, pushPath: "/loki/api/v1/push",
		flush: func(string) error { return nil }, stop: syscall.SIGTERM,
		needle: lokiNeedle, byLevel: lokiByLevel, dataDir: filepath.Join("data", "logs")}
}

func victoriaLogsSystem(bin string) *system {
	return &system{name: "victoria-logs", bin: bin, start: startVictoriaLogs, pushPath: "/insert/loki/api/v1/push",
		flush: func(base string) error {
			resp, err := http.Get(base + "/internal/force_flush")
			if err != nil {
				return fmt.Errorf("force flush: %w", err)
			}
			resp.Body.Close()
			return nil
		}, stop: syscall.SIGINT,
		needle: logsqlNeedle, byLevel: logsqlByLevel, dataDir: "vlogs"}
}

func startVispyr(bin, dir string) (*proc.Server, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	args := []string{"serve", "--data-dir=" + filepath.Join(dir, "data"), "--log.level=warn"}
	addrs := map[string]string{}
	for _, f := range []string{"otlp.grpc-address", "otlp.http-address", "metrics.listen-address",
		"tempo.listen-address", "loki.listen-address", "pyroscope.listen-address", "pyroscope.ingest-address",
		"ui.listen-address", "admin.listen-address", "health.listen-address", "faro.listen-address"} {
		a, err := proc.FreeAddr()
		if err != nil {
			return nil, "", err
		}
		addrs[f] = a
		args = append(args, "--"+f+"="+a)
	}
	srv, err := proc.Start(filepath.Join(dir, "vispyr.log"), bin, args...)
	if err != nil {
		return nil, "", err
	}
	if err := srv.WaitReady("http://"+addrs["admin.listen-address"]+"/-/ready", time.Minute); err != nil {
		srv.Stop(syscall.SIGKILL)
		return nil, "", err
	}
	return srv, "http://" + addrs["loki.listen-address"], nil
}

func startVictoriaLogs(bin, dir string) (*proc.Server, string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	addr, err := proc.FreeAddr()
	if err != nil {
		return nil, "", err
	}
	srv, err := proc.Start(filepath.Join(dir, "victoria-logs.log"), bin,
		"-storageDataPath="+filepath.Join(dir, "vlogs"), "-httpListenAddr="+addr,
		"-retentionPeriod=30d", "-loggerLevel=WARN")
	if err != nil {
		return nil, "", err
	}
	if err := srv.WaitReady("http://"+addr+"/health", time.Minute); err != nil {
		srv.Stop(syscall.SIGKILL)
		return nil, "", err
	}
	return srv, "http://" + addr, nil
}

// findBin is path when set, else name on PATH or in Go's bin directory.
func findBin(path, name string) string {
	if path != "" {
		return path
	}
	for _, dir := range append(strings.Split(os.Getenv("PATH"), ":"), filepath.Join(os.Getenv("HOME"), "go", "bin")) {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err == nil && !st.IsDir() {
			return p
		}
	}
	return ""
}

func diskGroup(rel string) string {
	top := strings.Split(rel, string(filepath.Separator))[0]
	if top == rel {
		top = "."
	}
	return top + "/"
}
