package alerting

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// targetsResponse is the part of /api/v1/targets the tests read.
type targetsResponse struct {
	Data struct {
		ActiveTargets []struct {
			Labels    map[string]string `json:"labels"`
			ScrapeURL string            `json:"scrapeUrl"`
			LastError string            `json:"lastError"`
			Health    string            `json:"health"`
		} `json:"activeTargets"`
	} `json:"data"`
}

func getJSON(t *testing.T, u string, v any) {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatalf("GET %s: %v", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", u, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("decode %s: %v", u, err)
	}
}

func writeFile(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// A prometheus.yml as Prometheus users write it scrapes a real node_exporter;
// a target answering garbage is down with its parse error in the targets API;
// Vispyr scrapes itself as job="vispyr".
func TestScrapeConfigs(t *testing.T) {
	node := harness.StartNodeExporter(t)
	garbage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		fmt.Fprint(w, "<html>this is {{ not metrics\n")
	}))
	defer garbage.Close()

	dir := t.TempDir()
	cfg := writeFile(t, dir, "prometheus.yml", fmt.Sprintf(`
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: node
    static_configs:
      - targets: [%q]
        labels: {env: test}
  - job_name: garbage
    static_configs:
      - targets: [%q]
`, node.Addr, strings.TrimPrefix(garbage.URL, "http://")))
	v := harness.Start(t, harness.Options{Args: []string{
		"--prometheus.config.file=" + cfg, "--prometheus.self-scrape-interval=1s",
	}})
	api := harness.NewAPI(v.MetricsURL(""))

	harness.Eventually(t, 30*time.Second, func() (bool, string) {
		var tr targetsResponse
		getJSON(t, v.MetricsURL("/api/v1/targets"), &tr)
		health := map[string]string{}
		for _, at := range tr.Data.ActiveTargets {
			health[at.Labels["job"]] = at.Health
			if at.Labels["job"] == "garbage" && at.Health == "down" && at.LastError == "" {
				return false, "garbage target down without an error"
			}
		}
		return health["node"] == "up" && health["garbage"] == "down" && health["vispyr"] == "up",
			fmt.Sprintf("health by job: %v", health)
	})
	var tr targetsResponse
	getJSON(t, v.MetricsURL("/api/v1/targets"), &tr)
	for _, at := range tr.Data.ActiveTargets {
		if at.Labels["job"] == "garbage" {
			t.Logf("garbage target error: %s", at.LastError)
		}
	}

	query := func(q string) []harness.Series {
		_, s, _ := api.Instant(t, q, time.Now())
		return s
	}
	harness.Eventually(t, 15*time.Second, func() (bool, string) {
		s := query(`node_load1{job="node", env="test"}`)
		return len(s) == 1, fmt.Sprintf("node_load1: %d series", len(s))
	})
	if s := query(`up{job="garbage"}`); len(s) != 1 || s[0].Value.Float() != 0 {
		t.Errorf("up{job=garbage}: want one series at 0, got %+v", s)
	}
	harness.Eventually(t, 15*time.Second, func() (bool, string) {
		s := query(`vispyr_remote_write_appended_total{job="vispyr"} or go_goroutines{job="vispyr"}`)
		return len(s) > 0, "no self-scraped series under job=vispyr"
	})
}

// A bad rule file fails the reload naming the file and line and the old rules
// keep running; a good change is picked up on SIGHUP.
func TestRuleReload(t *testing.T) {
	dir := t.TempDir()
	rules := writeFile(t, dir, "rules.yml", `groups:
  - name: example
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
`)
	cfg := writeFile(t, dir, "prometheus.yml", "global:\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n")
	v := harness.Start(t, harness.Options{Args: []string{
		"--prometheus.config.file=" + cfg, "--prometheus.self-scrape-interval=1s",
	}})
	api := harness.NewAPI(v.MetricsURL(""))
	ruleNames := func() []string {
		var rr struct {
			Data struct {
				Groups []struct {
					File  string `json:"file"`
					Rules []struct {
						Name string `json:"name"`
					} `json:"rules"`
				} `json:"groups"`
			} `json:"data"`
		}
		getJSON(t, v.MetricsURL("/api/v1/rules"), &rr)
		var names []string
		for _, g := range rr.Data.Groups {
			for _, r := range g.Rules {
				names = append(names, r.Name)
			}
		}
		return names
	}
	if got := ruleNames(); len(got) != 1 || got[0] != "job:up:sum" {
		t.Fatalf("rules after start: %v", got)
	}
	harness.Eventually(t, 20*time.Second, func() (bool, string) {
		_, s, _ := api.Instant(t, `job:up:sum{job="vispyr"}`, time.Now())
		return len(s) == 1, "recording rule has not written job:up:sum{job=vispyr}"
	})

	// Line 6 holds the bad expression.
	writeFile(t, dir, "rules.yml", `groups:
  - name: example
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up
`)
	for _, port := range []string{v.MetricsURL("/-/reload"), v.AdminURL("/-/reload")} {
		resp, err := http.Post(port, "", nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		msg := string(body)
		if resp.StatusCode != http.StatusInternalServerError {
			t.Fatalf("POST %s with a bad rule file: %s, want 500", port, resp.Status)
		}
		t.Logf("POST %s: %s", port, strings.TrimSpace(msg))
		if !strings.Contains(msg, rules) || !strings.Contains(msg, "6:") {
			t.Errorf("reload error does not name %s and line 6: %s", rules, msg)
		}
	}
	if got := ruleNames(); len(got) != 1 || got[0] != "job:up:sum" {
		t.Fatalf("old rules not kept after a failed reload: %v", got)
	}
	before := time.Now()
	harness.Eventually(t, 10*time.Second, func() (bool, string) {
		_, s, _ := api.Instant(t, `job:up:sum{job="vispyr"}`, time.Now())
		return len(s) == 1 && s[0].Value.T > float64(before.Unix()), "old rule stopped evaluating after the failed reload"
	})

	writeFile(t, dir, "rules.yml", `groups:
  - name: example
    interval: 1s
    rules:
      - record: job:up:sum
        expr: sum by (job) (up)
      - record: job:up:count
        expr: count by (job) (up)
`)
	if err := v.Process().Cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	harness.Eventually(t, 10*time.Second, func() (bool, string) {
		got := ruleNames()
		return len(got) == 2, fmt.Sprintf("rules after SIGHUP: %v", got)
	})
	harness.Eventually(t, 10*time.Second, func() (bool, string) {
		_, s, _ := api.Instant(t, `job:up:count{job="vispyr"}`, time.Now())
		return len(s) == 1, "new rule has not written job:up:count"
	})
}
