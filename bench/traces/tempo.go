package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/vispyr/vispyr/bench/internal/proc"
)

// tempoConfig is Tempo's single-binary configuration for the bench. Every
// listener is on a free loopback port so it runs next to Vispyr. The limits
// are raised so Tempo's defaults (30 MB/s per tenant, 10 000 live traces)
// do not decide the result: over the live-trace limit Tempo drops spans after
// acknowledging them. The live-store cuts idle traces after 2 s and blocks
// every 5 s (like Vispyr's block_cut_interval here) and flushes them to the
// local backend, which the queriers poll every 2 s, so blocks land during the
// run. query_end_cutoff is 0 so a search may see the newest data (Tempo 3's
// default hides the last 30 s).
//
// The load is backdated up to an hour, and Tempo clamps block times of spans
// older than 2 min (ingestion_time_range_slack) to ingestion time minus 2 min.
// Searches older than query_backend_after go to backend blocks picked by
// those times, newer ones to the live-store, which filters traces by their
// real times: with the default 15 min, backdated traces are in neither for
// 13 min, so the bench sets 1 min. complete_block_timeout stays at its
// default (20 min; the live-store keeps local copies of flushed blocks that
// long): at 2 min the clamped times made WAL blocks look expired and the
// live-store deleted them before completing them, losing acknowledged traces.
const tempoConfig = `# written by bench/traces
target: all
stream_over_http_enabled: true
usage_report:
  reporting_enabled: false
server:
  http_listen_address: 127.0.0.1
  http_listen_port: {{http_port}}
  grpc_listen_address: 127.0.0.1
  grpc_listen_port: {{grpc_port}}
  log_level: warn
memberlist:
  bind_addr: [127.0.0.1]
  bind_port: {{memberlist_port}}
  advertise_addr: 127.0.0.1
  advertise_port: {{memberlist_port}}
  abort_if_cluster_join_fails: false
distributor:
  receivers:
    otlp:
      protocols:
        grpc:
          endpoint: {{otlp}}
live_store:
  ring:
    instance_addr: 127.0.0.1
  wal:
    path: {{dir}}/traces/live-store
  shutdown_marker_dir: {{dir}}/shutdown-marker
  flush_check_period: 1s
  max_trace_idle: 2s
  max_trace_live: 10s
  max_block_duration: 5s
metrics_generator:
  ring:
    instance_addr: 127.0.0.1
  storage:
    path: {{dir}}/generator
query_frontend:
  query_end_cutoff: 0s
  search:
    query_backend_after: 1m
backend_scheduler:
  local_work_path: {{dir}}/backend-scheduler
storage:
  trace:
    backend: local
    blocklist_poll: 2s
    wal:
      path: {{dir}}/traces/wal
    local:
      path: {{dir}}/traces/blocks
overrides:
  defaults:
    ingestion:
      rate_limit_bytes: 1000000000
      burst_size_bytes: 1000000000
      max_traces_per_user: 0
    metrics_generator:
      processors: {{processors}}
`

// startTempo runs bin -target=all with tempoConfig under dir. With the
// generator on, Tempo's span-metrics and service-graphs processors run (its
// metrics go to a local WAL only: there is no remote-write target).
func startTempo(bin, dir string, generatorOff bool) (*proc.Server, endpoints, error) {
	var ep endpoints
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, ep, err
	}
	addrs := map[string]string{}
	for _, k := range []string{"http", "grpc", "memberlist", "otlp"} {
		a, err := proc.FreeAddr()
		if err != nil {
			return nil, ep, err
		}
		addrs[k] = a
	}
	port := func(k string) string { _, p, _ := net.SplitHostPort(addrs[k]); return p }
	processors := "[span-metrics, service-graphs]"
	if generatorOff {
		processors = "[]"
	}
	cfg := strings.NewReplacer("{{http_port}}", port("http"), "{{grpc_port}}", port("grpc"),
		"{{memberlist_port}}", port("memberlist"), "{{otlp}}", addrs["otlp"], "{{dir}}", dir,
		"{{processors}}", processors).Replace(tempoConfig)
	cfgPath := filepath.Join(dir, "tempo.yaml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		return nil, ep, err
	}
	srv, err := proc.Start(filepath.Join(dir, "tempo.log"), bin, "-config.file="+cfgPath, "-target=all")
	if err != nil {
		return nil, ep, err
	}
	http := "http://" + addrs["http"]
	ep = endpoints{otlp: addrs["otlp"], tempo: http, admin: http}
	if err := srv.WaitReady(http+"/ready", 2*time.Minute); err != nil {
		srv.Stop(syscall.SIGKILL)
		return nil, ep, err
	}
	return srv, ep, nil
}

// waitTempoFlushed waits until Tempo's backend blocks hold want traces:
// everything acknowledged has been cut from the live-store and flushed. It
// fails at once if Tempo dropped spans it had acknowledged, since the wait
// would never end and the figures would be wrong.
func waitTempoFlushed(ep endpoints, dir string, want int, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	last, lastChange := -1, t0
	for {
		if n, err := metricSum(ep.admin, "tempo_discarded_spans_total"); err == nil && n > 0 {
			return 0, fmt.Errorf("tempo discarded %.0f acknowledged spans (tempo_discarded_spans_total)", n)
		}
		got, err := tempoTraces(filepath.Join(dir, "traces", "blocks"))
		if err != nil {
			return 0, err
		}
		if got >= want {
			return time.Since(t0), nil
		}
		if got != last {
			last, lastChange = got, time.Now()
		}
		// Blocks land every few seconds; a minute without one means
		// traces were lost, not that Tempo is slow.
		if time.Since(t0) > timeout || time.Since(lastChange) > time.Minute {
			return 0, fmt.Errorf("tempo backend holds %d of %d traces after %v (log %s)",
				got, want, time.Since(t0).Round(time.Second), filepath.Join(dir, "tempo.log"))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// tempoTraces sums totalObjects (traces) over the live backend blocks:
// <root>/<tenant>/<block>/meta.json. Blocks already compacted into others
// carry meta.compacted.json instead and are not counted.
func tempoTraces(root string) (int, error) {
	metas, err := filepath.Glob(filepath.Join(root, "*", "*", "meta.json"))
	if err != nil {
		return 0, err
	}
	n := 0
	for _, m := range metas {
		b, err := os.ReadFile(m)
		if errors.Is(err, os.ErrNotExist) {
			continue // compacted away since the glob
		}
		if err != nil {
			return 0, err
		}
		var meta struct {
			TotalObjects int `json:"totalObjects"`
		}
		if err := json.Unmarshal(b, &meta); err != nil {
			return 0, fmt.Errorf("read %s: %w", m, err)
		}
		n += meta.TotalObjects
	}
	return n, nil
}

// tempoDisk is the space under <dir>/traces (backend blocks, live-store WAL
// and its local copies of recent blocks, Tempo's storage WAL), split like
// Vispyr's; backend blocks already compacted into others and awaiting
// deletion count as blocks-compacted/ so blocks/ is comparable.
func tempoDisk(dir string) (int64, map[string]int64) {
	root := filepath.Join(dir, "traces")
	return proc.DiskUsage(root, func(rel string) string {
		g := diskGroup(rel)
		parts := strings.Split(rel, string(filepath.Separator))
		if g != "blocks/" || len(parts) < 4 {
			return g
		}
		block := filepath.Join(root, parts[0], parts[1], parts[2])
		if _, err := os.Stat(filepath.Join(block, "meta.json")); err != nil {
			if _, err := os.Stat(filepath.Join(block, "meta.compacted.json")); err == nil {
				return "blocks-compacted/"
			}
		}
		return g
	})
}
