package uie2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/testpeer"
)

// opsRules has one alert that fires at once, one that stays pending for an hour and a
// recording rule that fails at every evaluation (the regexp is only compiled then).
const opsRules = `groups:
  - name: ui-ops
    interval: 1s
    rules:
      - alert: UIOpsAlwaysFiring
        expr: vector(1)
        labels: { severity: page, team: checkout }
        annotations: { summary: "checkout is on fire" }
      - alert: UIOpsPending
        expr: vector(1)
        for: 1h
      - record: uiops:broken
        expr: label_replace(vector(1), "x", "$1", "y", "(")
`

// TestUIOpsPages drives the Targets, Alerts and Vispyr pages of a server that scrapes
// Debian's node_exporter and a target answering junk, evaluates opsRules and ingests spans
// and log records.
func TestUIOpsPages(t *testing.T) {
	if testing.Short() {
		t.Skip("browser test skipped in -short mode")
	}
	testpeer.Binary(t, "chromium")
	root := repoRoot(t)
	if _, err := os.Stat(filepath.Join(root, "test", "ui", "node_modules", "playwright-core")); err != nil {
		msg := "playwright-core not installed: run `npm ci` in test/ui (.ci/install.d/60-ui.sh does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	buildUI(t, root)

	nodeAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	node := exec.Command(testpeer.Binary(t, "prometheus-node-exporter"), "--web.listen-address="+nodeAddr)
	if err := node.Start(); err != nil {
		t.Fatalf("start node_exporter: %v", err)
	}
	t.Cleanup(func() { _ = node.Process.Kill(); _ = node.Wait() })
	junk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprintln(w, "this is {not metrics")
	}))
	t.Cleanup(junk.Close)
	junkAddr := junk.Listener.Addr().String()

	gwOTLP, gwAdmin := startGateway(t, root)

	dir := t.TempDir()
	rules := filepath.Join(dir, "rules.yml")
	prom := filepath.Join(dir, "prometheus.yml")
	cfg := fmt.Sprintf(`global: { scrape_interval: 1s, evaluation_interval: 1s }
rule_files: [%q]
scrape_configs:
  - job_name: node
    static_configs: [{ targets: [%q] }]
  - job_name: junk
    static_configs: [{ targets: [%q] }]
  - job_name: gateway
    static_configs: [{ targets: [%q] }]
`, rules, nodeAddr, junkAddr, gwAdmin)
	for p, s := range map[string]string{rules: opsRules, prom: cfg} {
		if err := os.WriteFile(p, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// serve forwards its metrics (its self-scrape, every second) to a real VictoriaMetrics that
	// the browser script kills, to see the destination turn from healthy to failing.
	vmAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	vm := exec.Command(testpeer.Binary(t, "victoria-metrics"), "-httpListenAddr="+vmAddr, "-storageDataPath="+filepath.Join(dir, "vm"))
	if err := vm.Start(); err != nil {
		t.Fatalf("start victoria-metrics: %v", err)
	}
	t.Cleanup(func() { _ = vm.Process.Kill(); _ = vm.Wait() })
	testpeer.WaitHTTP(t, "http://"+vmAddr+"/health", 30*time.Second)

	s := startVispyr(t, root, "-prometheus.config.file", prom, "-prometheus.self-scrape-interval", "1s",
		"-forward.metrics.url", "http://"+vmAddr+"/api/v1/write")
	base := "http://" + s.ui
	get := func(path string) func() (*http.Response, error) {
		return func() (*http.Response, error) { return http.Get(base + path) }
	}
	query := func(q string) func() (*http.Response, error) {
		return get("/prom/api/v1/query?query=" + url.QueryEscape(q))
	}
	hasResult := func(b []byte) bool {
		var r struct {
			Data struct{ Result []json.RawMessage }
		}
		return json.Unmarshal(b, &r) == nil && len(r.Data.Result) > 0
	}

	// The spans and logs must arrive after the self-scrape has seen the counter at zero, or the
	// ingest chart's rate has nothing to rise from.
	waitFor(t, "the self-scrape", 20*time.Second, query(`vispyr_traces_spans_ingested_total{job="vispyr"}`), hasResult)
	sendTraces(t, s.otlpGRPC)
	logs := exec.Command(testpeer.Binary(t, "telemetrygen"), "logs", "--otlp-insecure", "--otlp-endpoint", s.otlpGRPC,
		"--service", "ui-ops", "--logs", "50", "--rate", "100")
	if out, err := logs.CombinedOutput(); err != nil {
		t.Fatalf("telemetrygen logs: %v\n%s", err, out)
	}
	// The gateway's destination never answers, so what it accepted stays queued.
	tg := exec.Command(testpeer.Binary(t, "telemetrygen"), "traces", "--otlp-insecure", "--otlp-endpoint", gwOTLP,
		"--service", "ui-ops-gateway", "--traces", "20", "--rate", "100")
	if out, err := tg.CombinedOutput(); err != nil {
		t.Fatalf("telemetrygen to the gateway: %v\n%s", err, out)
	}
	waitFor(t, "the gateway's queue backlog", 20*time.Second, query(`vispyr_forward_queue_bytes{job="gateway",signal="traces"} > 0`), hasResult)
	// A destination turns unhealthy only once a send has failed: after the batch's age, a
	// refused dial and the request timeout, then a scrape. Wait for that here, with room for a
	// loaded CI machine, so the browser's step checks only that the page shows it.
	waitFor(t, "the gateway's destination unhealthy", 90*time.Second,
		query(`vispyr_forward_destination_healthy{job="gateway",signal="traces"} == 0`), hasResult)
	for _, c := range []string{"vispyr_traces_spans_ingested_total", "vispyr_logs_ingested_lines_total"} {
		waitFor(t, c+" rising", 20*time.Second, query(`sum(rate(`+c+`{job="vispyr"}[1m])) > 0`), hasResult)
	}
	waitFor(t, "node_exporter and the gateway up, the junk target down", 20*time.Second, get("/prom/api/v1/targets"), func(b []byte) bool {
		return bytes.Contains(b, []byte(`"health":"down"`)) && bytes.Count(b, []byte(`"health":"up"`)) == 3 // node, gateway, vispyr
	})
	waitFor(t, "the firing alert", 20*time.Second, get("/prom/api/v1/alerts"), func(b []byte) bool {
		return bytes.Contains(b, []byte(`"state":"firing"`))
	})

	want, _ := json.Marshal(map[string]any{
		"nodeURL": "http://" + nodeAddr + "/metrics", "junkURL": "http://" + junkAddr + "/metrics",
		// Prometheus's text parser's own words for "this is {not metrics".
		"junkError": "invalid syntax",
		"firing":    "UIOpsAlwaysFiring", "firingExpr": "vector(1)", "firingSummary": "checkout is on fire",
		"firingLabels": []string{`severity="page"`, `team="checkout"`},
		"pending":      "UIOpsPending",
		"badRule":      "uiops:broken", "badRuleError": "invalid regular expression",
		"charts": map[string][]string{
			"ingest":      {"metric samples", "spans"},
			"wal":         {"metrics", "traces"},
			"disk":        {"metrics", "traces"},
			"head-series": {"metrics"},
		},
		// The forward chart names each queue by instance, signal and destination.
		"forwardLine": gwAdmin + " traces",
		// The Forward destinations table: the gateway's and serve's own, whose peer the script kills.
		"gatewayInstance": gwAdmin, "selfInstance": s.admin, "destinationPid": vm.Process.Pid,
	})
	runNode(t, filepath.Join(root, "test", "ui", "ops.mjs"), "ops", base, filepath.Join(root, "artifacts", "screenshots"), string(want))
}

// startGateway runs `vispyr gateway` forwarding traces to a port where nothing listens and
// returns its OTLP gRPC and admin addresses.
func startGateway(t *testing.T, root string) (otlpGRPC, admin string) {
	t.Helper()
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t)) }
	otlpGRPC, admin = addr(), addr()
	cmd := exec.Command(vispyrBinary(t, root), "gateway", "-data-dir", t.TempDir(),
		"-otlp.grpc-address", otlpGRPC, "-otlp.http-address", addr(), "-admin.listen-address", admin,
		"-metrics.listen-address", addr(), "-pyroscope.listen-address", addr(), "-pyroscope.ingest-address", addr(),
		"-loki.listen-address", addr(), "-tempo.listen-address", addr(), "-ui.listen-address", addr(),
		"-health.listen-address", addr(), "-forward.traces.url", "grpc://"+addr())
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gateway: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("gateway output:\n%.3000s", out.String())
		}
	})
	testpeer.WaitHTTP(t, "http://"+admin+"/-/ready", 30*time.Second)
	return otlpGRPC, admin
}
