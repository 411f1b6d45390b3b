package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/server"
)

// profileStartups runs `vispyr serve` in this process (server.Run) on a copy
// of the written TSDB twice, each under a CPU profile from the call until
// /-/ready answers: on the WAL as written (prefix.written.pprof), then after
// the first run's graceful stop (prefix.graceful.pprof).
func profileStartups(tsdbDir, work, prefix string) error {
	dir := filepath.Join(work, "profiled")
	if err := copyDir(tsdbDir, filepath.Join(dir, "metrics")); err != nil {
		return err
	}
	for _, name := range []string{"written", "graceful"} {
		d, err := profileStartup(dir, prefix+"."+name+".pprof")
		if err != nil {
			return fmt.Errorf("profile the start-up on the WAL %s: %w", name, err)
		}
		fmt.Printf("profiled in-process start-up (%s): %v to ready, CPU profile %s.%s.pprof\n", name, d.Round(time.Millisecond), prefix, name)
	}
	return nil
}

func profileStartup(dataDir, out string) (time.Duration, error) {
	cfg := config.Default()
	cfg.DataDir = dataDir
	cfg.Prometheus.SelfScrape.Enabled = false
	// The profiles are of the replay itself, before ready as it used to be.
	cfg.Metrics.BackgroundReplayMinWALBytes = 0
	l := &cfg.Listen
	for _, a := range []*string{&l.OTLPGRPC, &l.OTLPHTTP, &l.Prometheus, &l.PyroscopeIngest, &l.Pyroscope, &l.Tempo,
		&l.Loki, &l.Faro, &l.UI, &l.Admin, &l.Health} {
		addr, err := proc.FreeAddr()
		if err != nil {
			return 0, err
		}
		*a = addr
	}
	logFile, err := os.OpenFile(filepath.Join(dataDir, "vispyr.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return 0, err
	}
	defer logFile.Close()
	f, err := os.Create(out)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if err := pprof.StartCPUProfile(f); err != nil {
		return 0, err
	}
	t0 := time.Now()
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, cfg, slog.New(slog.NewTextHandler(logFile, nil))) }()
	err = waitReady("http://"+l.Admin+"/-/ready", done)
	took := time.Since(t0)
	pprof.StopCPUProfile()
	cancel() // a graceful stop, as SIGTERM
	if err != nil {
		return 0, err
	}
	return took, <-done
}

func waitReady(url string, done <-chan error) error {
	c := &http.Client{Timeout: time.Second}
	for {
		select {
		case err := <-done:
			return fmt.Errorf("stopped before ready: %v", err)
		default:
		}
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
}
