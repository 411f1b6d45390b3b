package metrics

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/histogram"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/tsdbutil"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// TestTSDBStatusCoversOwnHead feeds a store with metrics.head: vispyr and
// one with metrics.head: prometheus the same float and histogram series,
// for the default tenant and another, and wants /api/v1/status/tsdb to
// answer the same from both: the own head's series counted with the TSDB
// head's histograms, a label value or a series both heads hold counted
// once, and its chunks, open and closed, with the TSDB head's, as
// Prometheus's head alone counts them.
func TestTSDBStatusCoversOwnHead(t *testing.T) {
	var srvs [2]string
	base := time.Now().Add(-80 * time.Minute).UnixMilli()
	for i, h := range []string{config.HeadVispyr, config.HeadPrometheus} {
		testHead = h
		s, srv := openTest(t, config.Limits{})
		testHead = config.HeadPrometheus
		for _, tenant := range []string{pipeline.DefaultTenant, "team-a"} {
			writeStatusSeries(t, s, tenant, base, 300)
		}
		srvs[i] = srv.URL
	}
	for _, tenant := range []string{"", "team-a"} {
		for _, limit := range []int{1000, 3} {
			own, prom := tsdbStatus(t, srvs[0], tenant, limit), tsdbStatus(t, srvs[1], tenant, limit)
			what := "tenant " + strconv.Quote(tenant) + " limit " + strconv.Itoa(limit)
			// 300 samples a series close a chunk or more of each.
			if own.HeadStats != prom.HeadStats || prom.HeadStats.NumSeries != 32 || prom.HeadStats.ChunkCount < 2*32 {
				t.Errorf("%s: head stats %+v, with the TSDB head alone %+v (32 series, 64 chunks or more)", what, own.HeadStats, prom.HeadStats)
			}
			sameTSDBStats(t, what, own, prom, limit < 1000)
		}
	}
}

// writeStatusSeries writes n samples each of 30 float series of three
// metrics, a histogram series whose job value the floats share and whose
// instance they do not, and a series of floats then two histograms; then
// an out-of-order float, which the own head refuses and the TSDB's takes.
func writeStatusSeries(t *testing.T, s *Storage, tenant string, base int64, n int) {
	t.Helper()
	ctx := pipeline.WithTenant(context.Background(), tenant)
	app := s.AppenderV2(ctx)
	for j := range n {
		ts := base + int64(j)*15000
		for i := range 30 {
			ls := labels.FromStrings("__name__", "m_"+strconv.Itoa(i%3), "job", []string{"api", "db"}[i%2], "instance", "host-"+strconv.Itoa(i))
			if _, err := app.Append(0, ls, 0, ts, float64(i+j), nil, nil, storage.AOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		hist := labels.FromStrings("__name__", "req_seconds", "job", "api", "instance", "proxy")
		if _, err := app.Append(0, hist, 0, ts, 0, tsdbutil.GenerateTestHistogram(int64(j)), nil, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
		// Floats, then histograms: a series in both heads, one series in one.
		mixed := labels.FromStrings("__name__", "mixed", "job", "db", "instance", "host-0")
		var h *histogram.Histogram
		if j >= n-2 {
			h = tsdbutil.GenerateTestHistogram(int64(j))
		}
		if _, err := app.Append(0, mixed, 0, ts, float64(j), h, nil, storage.AOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
	app = s.AppenderV2(ctx)
	late := labels.FromStrings("__name__", "m_0", "job", "api", "instance", "host-0")
	if _, err := app.Append(0, late, 0, base+int64(n-1)*15000-7500, -1, nil, nil, storage.AOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := app.Commit(); err != nil {
		t.Fatal(err)
	}
}

func tsdbStatus(t *testing.T, base, tenant string, limit int) apiv1.TSDBStatus {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, base+"/api/v1/status/tsdb?limit="+strconv.Itoa(limit), nil)
	if err != nil {
		t.Fatal(err)
	}
	if tenant != "" {
		req.Header.Set("X-Scope-OrgID", tenant)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Status string           `json:"status"`
		Data   apiv1.TSDBStatus `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil || r.Status != "success" {
		t.Fatalf("status of tenant %q: %s, %v", tenant, r.Status, err)
	}
	return r.Data
}

// sameTSDBStats compares the four lists; Prometheus orders equal counts at
// random, so whole lists are compared in a stable order and lists cut to a
// limit by their counts alone.
func sameTSDBStats(t *testing.T, what string, own, prom apiv1.TSDBStatus, cut bool) {
	t.Helper()
	for _, l := range []struct {
		name      string
		got, want []apiv1.TSDBStat
	}{
		{"seriesCountByMetricName", own.SeriesCountByMetricName, prom.SeriesCountByMetricName},
		{"labelValueCountByLabelName", own.LabelValueCountByLabelName, prom.LabelValueCountByLabelName},
		{"memoryInBytesByLabelName", own.MemoryInBytesByLabelName, prom.MemoryInBytesByLabelName},
		{"seriesCountByLabelValuePair", own.SeriesCountByLabelValuePair, prom.SeriesCountByLabelValuePair},
	} {
		if !slices.IsSortedFunc(l.got, func(a, b apiv1.TSDBStat) int { return cmp.Compare(b.Value, a.Value) }) {
			t.Errorf("%s, %s: not by count descending: %v", what, l.name, l.got)
		}
		g, w := stableTSDBStats(l.got, cut), stableTSDBStats(l.want, cut)
		if !slices.Equal(g, w) || len(w) == 0 {
			t.Errorf("%s, %s:\nwith the own head %v\nTSDB head alone   %v", what, l.name, g, w)
		}
	}
}

func stableTSDBStats(s []apiv1.TSDBStat, countsOnly bool) []apiv1.TSDBStat {
	s = slices.Clone(s)
	for i := range s {
		if countsOnly {
			s[i].Name = ""
		}
	}
	slices.SortFunc(s, func(a, b apiv1.TSDBStat) int {
		return cmp.Or(cmp.Compare(b.Value, a.Value), cmp.Compare(a.Name, b.Name))
	})
	return s
}
