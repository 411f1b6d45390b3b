package metrics

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"
	promconfig "github.com/prometheus/prometheus/config"
	"github.com/prometheus/prometheus/discovery/targetgroup"
	"github.com/prometheus/prometheus/scrape"

	"github.com/vispyr/vispyr/internal/config"
)

// A scraped sample keeps the timestamp its target exposes (honor_timestamps,
// Prometheus's default), so a scrape can write an hour into the past: a
// cached range answer over that hour must show it, as Prometheus would.
func TestScrapedLateSampleChangesCachedAnswer(t *testing.T) {
	s, srv := openTest(t, config.Default().Limits)
	now := time.Now()
	late := now.Add(-time.Hour)
	rangeURL := srv.URL + "/api/v1/query_range?" + url.Values{
		"query": {"sum(late_metric) or vector(0)"},
		"start": {strconv.FormatInt(now.Add(-2*time.Hour).Unix(), 10)},
		"end":   {strconv.FormatInt(now.Add(-10*time.Minute).Unix(), 10)},
		"step":  {"60"},
	}.Encode()
	before := rangeMax(t, rangeURL)
	if before != 0 {
		t.Fatalf("before the scrape: max %v, want 0", before)
	}
	if again := rangeMax(t, rangeURL); again != 0 { // now served from the cache
		t.Fatalf("the cached answer: max %v, want 0", again)
	}

	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "# TYPE late_metric gauge\nlate_metric 42 %d\n", late.UnixMilli())
	}))
	defer target.Close()
	scrapeOnce(t, s, target.URL)

	if after := rangeMax(t, rangeURL); after != 42 {
		t.Fatalf("after a scrape wrote a sample an hour back: max %v, want 42 (a stale cached answer)", after)
	}
}

// scrapeOnce runs Prometheus's scrape manager over s's default appendable (as
// prommgr does) against target until the store holds its sample.
func scrapeOnce(t *testing.T, s *Storage, target string) {
	t.Helper()
	cfg, err := promconfig.Load("scrape_configs: [{job_name: late, scrape_interval: 1s, scrape_timeout: 1s}]", slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mgr, err := scrape.NewManager(&scrape.Options{}, slog.New(slog.DiscardHandler), nil, nil, s.DefaultAppendable(), prometheus.NewRegistry())
	if err != nil {
		t.Fatal(err)
	}
	if err := mgr.ApplyConfig(cfg); err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(target)
	tsets := make(chan map[string][]*targetgroup.Group, 1)
	tsets <- map[string][]*targetgroup.Group{"late": {{Source: "test",
		Targets: []model.LabelSet{{model.AddressLabel: model.LabelValue(u.Host)}}}}}
	go mgr.Run(tsets)
	defer mgr.Stop()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		for _, ts := range mgr.TargetsActive()["late"] {
			if !ts.LastScrape().IsZero() && ts.LastError() == nil {
				return
			}
		}
	}
	t.Fatal("the target was not scraped within 30s")
}

// rangeMax is the largest value of a range query's answer.
func rangeMax(t *testing.T, u string) float64 {
	t.Helper()
	r := get(t, u)
	if r.Status != "success" {
		t.Fatalf("%s: %s %s", u, r.Status, r.Error)
	}
	var m struct {
		Result []struct {
			Values [][2]any `json:"values"`
		} `json:"result"`
	}
	if err := json.Unmarshal(r.Data, &m); err != nil {
		t.Fatal(err)
	}
	best := 0.0
	for _, s := range m.Result {
		for _, v := range s.Values {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v[1].(string)), 64)
			best = max(best, f)
		}
	}
	return best
}
