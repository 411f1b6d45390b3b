package alerting

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/testpeer"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// webhookAlert is one alert of Alertmanager's webhook payload.
type webhookAlert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations"`
	GeneratorURL string            `json:"generatorURL"`
}

// webhook is the receiver Alertmanager delivers to: each notification's
// alerts arrive on a channel.
func webhook(t *testing.T) (*httptest.Server, <-chan webhookAlert) {
	ch := make(chan webhookAlert, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var msg struct {
			Alerts []webhookAlert `json:"alerts"`
		}
		if err := json.NewDecoder(r.Body).Decode(&msg); err != nil {
			t.Errorf("webhook payload: %v", err)
		}
		for _, a := range msg.Alerts {
			select {
			case ch <- a:
			default:
			}
		}
	}))
	t.Cleanup(srv.Close)
	return srv, ch
}

// spans sends spans of service through telemetrygen until the context ends:
// telemetrygen's child spans are server spans, so they count as requests.
func spans(ctx context.Context, t *testing.T, endpoint, service, status string) {
	bin := testpeer.Binary(t, "telemetrygen")
	cmd := exec.CommandContext(ctx, bin, "traces", "--otlp-insecure", "--otlp-endpoint", endpoint,
		"--service", service, "--status-code", status, "--child-spans", "2", "--rate", "20", "--duration", "60s")
	cmd.WaitDelay = time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("start telemetrygen: %v", err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() { <-done })
}

// waitAlert returns the first delivered alert named name with status.
func waitAlert(t *testing.T, ch <-chan webhookAlert, name, status string, timeout time.Duration) webhookAlert {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case a := <-ch:
			t.Logf("webhook: %s %s %v", a.Status, a.Labels["alertname"], a.Labels)
			if a.Labels["alertname"] == name && a.Status == status {
				return a
			}
		case <-deadline:
			t.Fatalf("no %s %s notification within %v", status, name, timeout)
		}
	}
}

// A shipped rule, driven by real spans in error, fires through a real
// Alertmanager to a webhook with the external labels and a link into the UI;
// once the spans stop failing the alert resolves.
func TestShippedRuleAlertsThroughAlertmanager(t *testing.T) {
	hook, alerts := webhook(t)
	am := harness.StartAlertmanager(t, fmt.Sprintf(`
route:
  receiver: test
  group_by: [alertname, service]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: test
    webhook_configs:
      - url: %q
        send_resolved: true
`, hook.URL))

	dir := t.TempDir()
	cfg := writeFile(t, dir, "prometheus.yml", fmt.Sprintf(`
global:
  evaluation_interval: 1s
  external_labels: {cluster: e2e}
alerting:
  alertmanagers:
    - static_configs:
        - targets: [%q]
`, am.Addr))
	const ui = "https://vispyr.example.com/"
	v := harness.Start(t, harness.Options{Args: []string{
		"--prometheus.config.file=" + cfg,
		"--ui.external-url=" + ui,
		"--generator.collection-interval=1s",
		"--prometheus.default-rules",
		"--prometheus.default-rules.interval=1s",
		"--prometheus.default-rules.for=2s",
		"--prometheus.default-rules.rate-window=4s",
		"--prometheus.default-rules.error-ratio=0.5",
	}})

	ctx, stopErrors := context.WithCancel(context.Background())
	defer stopErrors()
	spans(ctx, t, v.OTLPGRPCAddr, "checkout", "Error")
	spans(ctx, t, v.OTLPGRPCAddr, "search", "Ok")

	fired := waitAlert(t, alerts, "VispyrServiceErrorRatioHigh", "firing", 30*time.Second)
	if fired.Labels["service"] != "checkout" || fired.Labels["cluster"] != "e2e" || fired.Labels["severity"] != "critical" {
		t.Errorf("firing alert labels: %v, want service=checkout, cluster=e2e (external label), severity=critical", fired.Labels)
	}
	if !strings.Contains(fired.Annotations["summary"], "checkout") {
		t.Errorf("summary does not name the service: %q", fired.Annotations["summary"])
	}

	// The link opens the UI's explorer at the rule's expression: the UI
	// serves that page, and the query there finds checkout failing.
	link, err := url.Parse(fired.GeneratorURL)
	if err != nil || !strings.HasPrefix(fired.GeneratorURL, ui+"explore?") {
		t.Fatalf("generatorURL %q does not open the UI's explorer at %s", fired.GeneratorURL, ui)
	}
	resp, err := http.Get(v.URL(v.UIAddr, link.RequestURI()))
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "<html") {
		t.Errorf("UI at %s: %s", link.RequestURI(), resp.Status)
	}
	q := link.Query().Get("q")
	_, series, _ := harness.NewAPI(v.MetricsURL("")).Instant(t, q, time.Now())
	if len(series) != 1 || series[0].Metric["service"] != "checkout" {
		t.Errorf("the link's query %q answers %+v, want checkout alone", q, series)
	}

	// Errors stop (search keeps succeeding): the ratio falls and the alert resolves.
	stopErrors()
	ctx2, stop2 := context.WithCancel(context.Background())
	defer stop2()
	spans(ctx2, t, v.OTLPGRPCAddr, "checkout", "Ok")
	resolved := waitAlert(t, alerts, "VispyrServiceErrorRatioHigh", "resolved", 30*time.Second)
	if resolved.Labels["service"] != "checkout" {
		t.Errorf("resolved alert labels: %v", resolved.Labels)
	}
}
