package main

import (
	"encoding/json"
	"fmt"
	"github.com/vispyr/vispyr/bench/internal/peers"
	"github.com/vispyr/vispyr/bench/internal/proc"
	"github.com/vispyr/vispyr/bench/internal/rwload"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"syscall"
	"time"
)

// vispyrExtraArgs are appended to `vispyr serve`'s flags (-vispyr-args).
var vispyrExtraArgs []string

// target knows how to start one remote-write receiver and where it keeps
// its data.
type target struct {
	name string
	bin  string
	// start runs the target on a fresh dir; it returns the remote-write URL,
	// the readiness URL and the query API base URL.
	start func(bin, dir string) (srv *proc.Server, writeURL, readyURL, apiURL string, err error)
	// flush makes everything ingested durable and queryable before
	// measurement; it may report an extra figure (e.g. a compacted snapshot).
	flush func(apiURL, dataDir string) (note string, compacted int64)
	// afterStop, if set, measures the compacted size offline.
	afterStop func(dataDir string) (compacted int64, err error)
	stop      syscall.Signal
	// skip are top-level data dirs not counted as storage (caches, the
	// disk guard's ballast).
	skip []string
	// cleanup, if set, runs once the run is measured (stops helper processes).
	cleanup func()
}

func vispyrTarget(bin string) target {
	return target{name: "vispyr", bin: bin, stop: syscall.SIGTERM, skip: []string{ballastGroup},
		start: func(bin, dir string) (*proc.Server, string, string, string, error) {
			return started(peers.Vispyr(bin, dir, vispyrExtraArgs...))
		},
		flush: func(string, string) (string, int64) { return "graceful stop (TSDB close)", 0 },
		afterStop: func(dataDir string) (int64, error) {
			return snapshotTSDB(filepath.Join(dataDir, "metrics"))
		},
	}
}

func prometheusTarget(bin string) target {
	return target{name: "prometheus", bin: bin, stop: syscall.SIGTERM,
		start: func(bin, dir string) (*proc.Server, string, string, string, error) {
			return started(peers.Prometheus(bin, dir))
		},
		// A snapshot with the head writes the head as a compacted block: what
		// the same samples take once Prometheus compacts them (after ~3h).
		flush: func(apiURL, dataDir string) (string, int64) {
			resp, err := http.Post(apiURL+"/api/v1/admin/tsdb/snapshot?skip_head=false", "", nil)
			if err != nil {
				return "snapshot failed: " + err.Error(), 0
			}
			defer resp.Body.Close()
			var r struct {
				Data struct {
					Name string `json:"name"`
				} `json:"data"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Data.Name == "" {
				return fmt.Sprintf("snapshot failed: %d %v", resp.StatusCode, err), 0
			}
			snap := filepath.Join(dataDir, "snapshots", r.Data.Name)
			size, _ := proc.DiskUsage(snap, diskGroup)
			os.RemoveAll(filepath.Join(dataDir, "snapshots"))
			return "admin snapshot (head as block), then graceful stop", size
		},
	}
}

func victoriaMetricsTarget(bin string) target {
	return target{name: "victoria-metrics", bin: bin, stop: syscall.SIGINT, skip: []string{"cache"},
		start: func(bin, dir string) (*proc.Server, string, string, string, error) {
			return started(peers.VictoriaMetrics(bin, dir))
		},
		flush: func(apiURL, dataDir string) (string, int64) {
			resp, err := http.Get(apiURL + "/internal/force_flush")
			if err != nil {
				return "force_flush failed: " + err.Error(), 0
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			return fmt.Sprintf("/internal/force_flush (%d), then graceful stop", resp.StatusCode), 0
		},
	}
}

// started unpacks a peer's start for target.start.
func started(p *peers.Started, err error) (*proc.Server, string, string, string, error) {
	if err != nil {
		return nil, "", "", "", err
	}
	return p.Server, p.WriteURL, p.ReadyURL, p.APIURL, nil
}

// storedSamples asks the target how many samples of the load it holds:
// sum(count_over_time({job="bench"}[span])) at the last round's time.
func storedSamples(apiURL string, l *rwload.Load) (int64, error) {
	end := l.Start.Add(time.Duration(l.Rounds-1) * l.Interval)
	span := time.Duration(l.Rounds) * l.Interval
	q := fmt.Sprintf(`sum(count_over_time({job="bench"}[%ds]))`, int(span.Seconds()))
	f, err := peers.Scalar(http.DefaultClient, apiURL, q, end)
	return int64(f), err
}
