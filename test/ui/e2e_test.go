// Package uie2e drives the built-in UI in headless Chromium against a real `vispyr serve`
// fed by real clients: telemetrygen for traces (and so span metrics) and pyroscope-go for
// CPU profiles of a known hot function.
package uie2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grafana/pyroscope-go"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"

	"github.com/vispyr/vispyr/internal/testpeer"
)

// hotService and the hot function's name are what the flame graph must show.
const (
	hotService  = "ui-e2e-hot"
	hotFunction = "vispyrE2EHotLoop"
)

var services = []string{"ui-e2e-checkout", "ui-e2e-payments"}

func repoRoot(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// server is a running vispyr serve with every port on loopback.
type server struct {
	ui, otlpGRPC, pyroscope, admin, prom, tempo string
}

// extra flags are appended to the serve command line. A port picked free can
// be taken by another test package before vispyr binds it: vispyr then exits
// with "address already in use", and the start is retried on new ports.
func startVispyr(t *testing.T, root string, extra ...string) server {
	t.Helper()
	bin := vispyrBinary(t, root)
	for attempt := 1; ; attempt++ {
		s, logs, err := launchVispyr(t, bin, extra)
		if err == nil {
			return s
		}
		if attempt == 3 || !strings.Contains(logs, "address already in use") {
			t.Fatalf("start vispyr: %v\n%s", err, logs)
		}
		t.Logf("start vispyr (attempt %d): a port was taken; retrying on new ones", attempt)
	}
}

// launchVispyr starts vispyr serve on fresh ports and waits until it is
// ready; on failure it returns the process's output, the process gone.
func launchVispyr(t *testing.T, bin string, extra []string) (server, string, error) {
	addr := func() string { return fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t)) }
	s := server{ui: addr(), otlpGRPC: addr(), pyroscope: addr(), admin: addr(), prom: addr(), tempo: addr()}
	args := []string{"serve",
		"-data-dir", t.TempDir(),
		"-ui.listen-address", s.ui,
		"-otlp.grpc-address", s.otlpGRPC,
		"-otlp.http-address", addr(),
		"-metrics.listen-address", s.prom,
		"-tempo.listen-address", s.tempo,
		"-loki.listen-address", addr(),
		"-faro.listen-address", addr(),
		"-pyroscope.listen-address", s.pyroscope,
		"-pyroscope.ingest-address", addr(),
		"-admin.listen-address", s.admin,
		"-health.listen-address", addr(),
	}
	args = append(args, extra...)
	// A file, not a buffer: the output is read while the process writes it.
	logPath := filepath.Join(t.TempDir(), "vispyr.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("create vispyr log: %v", err)
	}
	defer logFile.Close()
	output := func() string { b, _ := os.ReadFile(logPath); return string(b) }
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start vispyr: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	stop := func() {
		_ = cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	}
	// Stop polling as soon as the process exits: a lost port race ends it.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-done:
			cancel()
		case <-ctx.Done():
		}
	}()
	err = testpeer.PollHTTP(ctx, "http://"+s.admin+"/-/ready", 30*time.Second)
	if err == nil {
		err = testpeer.PollHTTP(ctx, "http://"+s.ui+"/", 10*time.Second)
	}
	if err != nil {
		stop()
		return s, output(), fmt.Errorf("not ready: %w", err)
	}
	t.Cleanup(func() {
		stop()
		if t.Failed() {
			t.Logf("vispyr output:\n%s", output())
		}
	})
	return s, "", nil
}

// The UI and the binary are built once for every test of the package.
var (
	uiOnce, binOnce sync.Once
	uiErr, binErr   error
	binDir          string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// vispyrBinary builds vispyr (with the UI built before, when a test asked).
func vispyrBinary(t *testing.T, root string) string {
	t.Helper()
	binOnce.Do(func() {
		if binDir, binErr = os.MkdirTemp("", "vispyr-ui-e2e-"); binErr != nil {
			return
		}
		build := exec.Command("go", "build", "-o", filepath.Join(binDir, "vispyr"), "./cmd/vispyr")
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			binErr = fmt.Errorf("build vispyr: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return filepath.Join(binDir, "vispyr")
}

// buildUI runs web/build.sh (once per test binary) so that vispyr embeds the current UI.
func buildUI(t *testing.T, root string) {
	t.Helper()
	testpeer.Binary(t, "npm")
	uiOnce.Do(func() { uiErr = runBuildUI(root) })
	if uiErr != nil {
		t.Fatal(uiErr)
	}
}

func runBuildUI(root string) error {
	cmd := exec.Command("bash", filepath.Join(root, "web", "build.sh"))
	// Other packages' builds may embed internal/ui concurrently: add, never remove.
	cmd.Env = append(os.Environ(), "VISPYR_UI_PRUNE=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build web UI: %v\n%s", err, out)
	}
	return nil
}

// sendTraces runs telemetrygen: each trace has a server root span and child spans.
func sendTraces(t *testing.T, endpoint string) {
	t.Helper()
	tg := testpeer.Binary(t, "telemetrygen")
	for i, svc := range services {
		status := "Unset"
		if i == 1 {
			status = "Error" // one service with errors, so the error column has something to show
		}
		cmd := exec.Command(tg, "traces", "--otlp-insecure", "--otlp-endpoint", endpoint,
			"--service", svc, "--traces", "40", "--rate", "40", "--child-spans", "3",
			"--span-duration", fmt.Sprintf("%dms", 20+30*i), "--status-code", status)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("telemetrygen: %v\n%s", err, out)
		}
	}
}

//go:noinline
func vispyrE2EHotLoop(stop *atomic.Bool) float64 {
	x := 1.0
	for !stop.Load() {
		for i := 0; i < 1_000_000; i++ {
			x = x*1.0000001 + 1e-9
		}
	}
	return x
}

//go:noinline
func vispyrE2ELatePhase(stop *atomic.Bool) float64 { return vispyrE2EHotLoop(stop) + 1 }

// profileHotLoop runs pyroscope-go in this process while a goroutine burns CPU in the hot
// function inside a traced span, as an instrumented app with span profiles does: the span
// carries pyroscope.profile.id and the CPU samples carry its span_id label.
//
// The run has two profiling sessions. In the second, a late-phase function burns CPU too, so
// that a diff split at lateStart has a frame that grew. (A profile is stamped with the start
// of its upload interval, so only a session boundary puts a clean line between the phases.)
func profileHotLoop(t *testing.T, serverURL, otlpGRPC string, d time.Duration) (traceID, spanID string, lateStart time.Time) {
	t.Helper()
	ctx := context.Background()
	exp, err := otlptracegrpc.New(ctx, otlptracegrpc.WithEndpoint(otlpGRPC), otlptracegrpc.WithInsecure())
	if err != nil {
		t.Fatalf("otlp exporter: %v", err)
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp),
		sdktrace.WithResource(resource.NewSchemaless(attribute.String("service.name", hotService))))
	session := func() *pyroscope.Profiler {
		p, err := pyroscope.Start(pyroscope.Config{
			ApplicationName: hotService,
			ServerAddress:   serverURL,
			UploadRate:      2 * time.Second,
			ProfileTypes:    []pyroscope.ProfileType{pyroscope.ProfileCPU},
		})
		if err != nil {
			t.Fatalf("start pyroscope-go: %v", err)
		}
		return p
	}
	stopSession := func(p *pyroscope.Profiler) {
		if err := p.Stop(); err != nil {
			t.Fatalf("stop pyroscope-go: %v", err)
		}
	}

	p := session()
	ctx, span := tp.Tracer("ui-e2e").Start(ctx, "hot request", trace.WithSpanKind(trace.SpanKindServer))
	sc := span.SpanContext()
	traceID, spanID = sc.TraceID().String(), sc.SpanID().String()
	span.SetAttributes(attribute.String("pyroscope.profile.id", spanID))
	var stop atomic.Bool
	done := make(chan float64)
	go pyroscope.TagWrapper(ctx, pyroscope.Labels("span_id", spanID), func(context.Context) { done <- vispyrE2EHotLoop(&stop) })
	time.Sleep(d / 2)
	stopSession(p)

	lateStart = time.Now()
	p = session()
	late := make(chan float64)
	go func() { late <- vispyrE2ELatePhase(&stop) }()
	time.Sleep(d / 2)
	stop.Store(true)
	<-done
	<-late
	span.End()
	stopSession(p)
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatalf("flush spans: %v", err)
	}
	return traceID, spanID, lateStart
}

// startHostMetrics runs Debian's node_exporter and a Prometheus that scrapes it and
// remote-writes to Vispyr, as the original Vispyr agent's Alloy does, for the host panels.
func startHostMetrics(t *testing.T, promAddr string) {
	t.Helper()
	start := func(name string, args ...string) {
		cmd := exec.Command(testpeer.Binary(t, name), args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", name, err)
		}
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			if t.Failed() {
				t.Logf("%s output:\n%.3000s", name, out.String())
			}
		})
	}
	nodeAddr := fmt.Sprintf("127.0.0.1:%d", testpeer.FreePort(t))
	start("prometheus-node-exporter", "--web.listen-address="+nodeAddr)
	dir := t.TempDir()
	cfg := fmt.Sprintf(`global: { scrape_interval: 1s }
scrape_configs:
  - job_name: node
    static_configs: [{ targets: ['%s'] }]
remote_write:
  - url: http://%s/api/v1/write
    queue_config: { batch_send_deadline: 1s }
`, nodeAddr, promAddr)
	if err := os.WriteFile(filepath.Join(dir, "prometheus.yml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	start("prometheus", "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		fmt.Sprintf("--web.listen-address=127.0.0.1:%d", testpeer.FreePort(t)))
}

// waitFor polls an API of the UI's own origin until check accepts its body.
func waitFor(t *testing.T, what string, timeout time.Duration, req func() (*http.Response, error), check func([]byte) bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		resp, err := req()
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == 200 && check(b) {
				return
			}
			last = fmt.Sprintf("HTTP %d: %.300s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
		time.Sleep(500 * time.Millisecond)
	}
	t.Fatalf("%s did not show up within %s; last answer: %s", what, timeout, last)
}

func runNode(t *testing.T, script string, args ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, testpeer.Binary(t, "node"), append([]string{script}, args...)...)
	cmd.Dir = filepath.Dir(script)
	cmd.Env = append(os.Environ(), "CHROMIUM="+testpeer.Binary(t, "chromium"))
	out, err := cmd.CombinedOutput()
	t.Logf("%s", out)
	if err != nil {
		t.Fatalf("browser test %v failed: %v", args[:1], err)
	}
}

// requireBrowser skips (fails in CI) when Chromium or playwright-core is missing.
func requireBrowser(t *testing.T) {
	t.Helper()
	testpeer.Binary(t, "chromium")
	if _, err := os.Stat(filepath.Join(repoRoot(t), "test", "ui", "node_modules", "playwright-core")); err != nil {
		msg := "playwright-core not installed: run `npm ci` in test/ui (.ci/install.d/60-ui.sh does)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}

func TestUIEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("browser end-to-end test skipped in -short mode")
	}
	requireBrowser(t)
	root := repoRoot(t)
	buildUI(t, root)
	s := startVispyr(t, root)
	shots := filepath.Join(root, "artifacts", "screenshots")
	// Screenshots of an earlier run (a failure shot especially) must not pass for this one's.
	if err := os.RemoveAll(shots); err != nil {
		t.Fatalf("clear screenshots: %v", err)
	}
	script := filepath.Join(root, "test", "ui", "e2e.mjs")
	base := "http://" + s.ui

	// A fresh server has no data: the home page must explain how to send some.
	runNode(t, script, "empty", base, shots)

	startHostMetrics(t, s.prom)
	var hotTrace, hotSpan string
	var lateStart time.Time
	profStart := time.Now()
	profiled := make(chan struct{})
	go func() {
		defer close(profiled)
		hotTrace, hotSpan, lateStart = profileHotLoop(t, "http://"+s.pyroscope, s.otlpGRPC, 8*time.Second)
	}()
	sendTraces(t, s.otlpGRPC)
	<-profiled
	profEnd := time.Now()

	// Wait until every signal is queryable through the UI's own API prefixes.
	now := func() int64 { return time.Now().Unix() }
	for _, svc := range append(services, hotService) {
		q := url.QueryEscape(`{ resource.service.name = "` + svc + `" }`)
		waitFor(t, "traces of "+svc+" in search", 120*time.Second, func() (*http.Response, error) {
			return http.Get(fmt.Sprintf("%s/tempo/api/search?q=%s&start=%d&end=%d", base, q, now()-900, now()+60))
		}, func(b []byte) bool { return bytes.Contains(b, []byte(svc)) })
	}
	waitFor(t, "span metrics", 120*time.Second, func() (*http.Response, error) {
		return http.Get(base + "/prom/api/v1/query?query=" + "sum+by+(service,service_name)(traces_spanmetrics_calls_total)")
	}, func(b []byte) bool { return bytes.Contains(b, []byte(services[1])) })
	waitFor(t, "host CPU from node_exporter", 120*time.Second, func() (*http.Response, error) {
		return http.Get(base + "/prom/api/v1/query?query=" + url.QueryEscape(`100 - (avg(rate(node_cpu_seconds_total{mode="idle"}[1m])) * 100)`))
	}, func(b []byte) bool { return bytes.Contains(b, []byte(`"value"`)) })
	waitFor(t, "the hot function's profile", 120*time.Second, func() (*http.Response, error) {
		body, _ := json.Marshal(map[string]any{
			"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": `{service_name="` + hotService + `"}`,
			"start": fmt.Sprint((now() - 900) * 1000), "end": fmt.Sprint((now() + 60) * 1000), "maxNodes": "2048",
		})
		req, _ := http.NewRequest("POST", base+"/pyroscope/querier.v1.QuerierService/SelectMergeStacktraces", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Connect-Protocol-Version", "1")
		return http.DefaultClient.Do(req)
	}, func(b []byte) bool { return bytes.Contains(b, []byte(hotFunction)) })

	// When the profile part fails, where the samples landed in time is the first thing to know.
	if body, err := json.Marshal(map[string]any{
		"profileTypeID": "process_cpu:cpu:nanoseconds:cpu:nanoseconds", "labelSelector": `{service_name="` + hotService + `"}`,
		"start": fmt.Sprint(profStart.Add(-time.Minute).UnixMilli()), "end": fmt.Sprint(time.Now().UnixMilli()), "step": 1,
	}); err == nil {
		req, _ := http.NewRequest("POST", base+"/pyroscope/querier.v1.QuerierService/SelectSeries", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Connect-Protocol-Version", "1")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			t.Logf("profiled %s .. %s; CPU series: %.600s", profStart.Format(time.StampMilli), profEnd.Format(time.StampMilli), b)
		}
	}
	want, _ := json.Marshal(map[string]any{
		"services": services, "minSpans": 4, "hotService": hotService, "hotFunction": hotFunction,
		"hotTrace": hotTrace, "hotSpan": hotSpan, "lateFunction": "vispyrE2ELatePhase",
		// A diff window whose halves meet where the second profiling session began.
		"diffFrom": lateStart.Add(-30 * time.Second).UnixMilli(),
		"diffTo":   lateStart.Add(30 * time.Second).UnixMilli(),
	})
	runNode(t, script, "full", base, shots, string(want))
	entries, _ := os.ReadDir(shots)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	t.Logf("screenshots in %s: %s", shots, strings.Join(names, " "))
}
