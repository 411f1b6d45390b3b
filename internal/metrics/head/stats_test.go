package head

import (
	"cmp"
	"fmt"
	"slices"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/index"

	"github.com/vispyr/vispyr/internal/metrics/seriesindex"
)

// TestStatsAsPrometheusHead feeds both heads the same scrapes and wants the
// TSDB status API's figures of Prometheus's head from ours: series, time
// bounds and the four cardinality lists, whole and cut to a few.
func TestStatsAsPrometheusHead(t *testing.T) {
	own, prom := newOwn(t), newPrometheus(t)
	load(t, own, prom, 3)
	for _, limit := range []int{10000, 4} {
		got, want := own.Stats(labels.MetricName, limit), prom.Stats(labels.MetricName, limit)
		if got.NumSeries != want.NumSeries || got.MinTime != want.MinTime || got.MaxTime != want.MaxTime {
			t.Errorf("limit %d: own head has %d series in [%d, %d], Prometheus's %d in [%d, %d]", limit,
				got.NumSeries, got.MinTime, got.MaxTime, want.NumSeries, want.MinTime, want.MaxTime)
		}
		sameStats(t, fmt.Sprint("limit ", limit), got.IndexPostingStats, want.IndexPostingStats, limit < 10000)
	}
}

// TestNumChunksAsPrometheusHead feeds both heads the same five hours of
// scrapes and wants NumChunks to be the prometheus_tsdb_head_chunks of
// Prometheus's head, before and after both truncate their oldest range.
func TestNumChunksAsPrometheusHead(t *testing.T) {
	reg := prometheus.NewRegistry()
	own, prom := newOwn(t), newPrometheusHead(t, reg, 0)
	load(t, own, prom, 5)
	want := gaugeValue(t, reg, "prometheus_tsdb_head_chunks")
	if got := own.NumChunks(); got != want || int64(got) <= int64(own.NumSeries()) {
		t.Errorf("own head has %d chunks, Prometheus's %d (of %d series; the test wants closed chunks)", got, want, own.NumSeries())
	}
	mint := prom.MinTime() + 2*hour
	if err := prom.Truncate(mint); err != nil {
		t.Fatal(err)
	}
	if err := own.Truncate(mint); err != nil {
		t.Fatal(err)
	}
	if got, want2 := own.NumChunks(), gaugeValue(t, reg, "prometheus_tsdb_head_chunks"); got != want2 || want2 >= want {
		t.Errorf("truncated at %d: own head has %d chunks, Prometheus's %d (%d before)", mint, got, want2, want)
	}
}

func gaugeValue(t *testing.T, g prometheus.Gatherer, name string) int {
	t.Helper()
	mfs, err := g.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return int(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	t.Fatalf("no %s gathered", name)
	return 0
}

// sameStats compares PostingsStats whose ties Prometheus orders at random:
// whole lists by their stats in a stable order, lists cut to a limit by
// their counts, which are the same whichever of equal counts are kept.
func sameStats(t *testing.T, what string, got, want *index.PostingsStats, cut bool) {
	t.Helper()
	if got.NumLabelPairs != want.NumLabelPairs {
		t.Errorf("%s: %d label pairs, Prometheus's head %d", what, got.NumLabelPairs, want.NumLabelPairs)
	}
	for _, l := range []struct {
		name      string
		got, want []index.Stat
	}{
		{"series by metric name", got.CardinalityMetricsStats, want.CardinalityMetricsStats},
		{"values by label name", got.CardinalityLabelStats, want.CardinalityLabelStats},
		{"memory by label name", got.LabelValueStats, want.LabelValueStats},
		{"series by label pair", got.LabelValuePairsStats, want.LabelValuePairsStats},
	} {
		if len(l.want) == 0 {
			t.Errorf("%s, %s: Prometheus's head has none; the test tells nothing", what, l.name)
		}
		if !slices.IsSortedFunc(l.got, func(a, b index.Stat) int { return cmp.Compare(b.Count, a.Count) }) {
			t.Errorf("%s, %s: not by count descending: %v", what, l.name, l.got)
		}
		g, w := stable(l.got), stable(l.want)
		if cut {
			g, w = counts(g), counts(w)
		}
		if !slices.Equal(g, w) {
			t.Errorf("%s, %s:\nown head    %v\nPrometheus's %v", what, l.name, g, w)
		}
	}
}

func stable(s []index.Stat) []index.Stat {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b index.Stat) int {
		return cmp.Or(cmp.Compare(b.Count, a.Count), cmp.Compare(a.Name, b.Name))
	})
	return s
}

func counts(s []index.Stat) []index.Stat {
	out := make([]index.Stat, len(s))
	for i, st := range s {
		out[i].Count = st.Count
	}
	return out
}

// TestPostingsStatsMergesHeads gives PostingsStats the pairs of two heads
// that share series' label values: series add up, a value both hold is
// one value, memory is reckoned on the merged series.
func TestPostingsStatsMergesHeads(t *testing.T) {
	pairs := []seriesindex.LabelPair{
		{Name: "__name__", Value: "up", Series: 2}, {Name: "job", Value: "api", Series: 2}, // one head
		{Name: "__name__", Value: "up", Series: 1}, {Name: "job", Value: "api", Series: 1}, // the other
		{Name: "__name__", Value: "h", Series: 1}, {Name: "job", Value: "db", Series: 1},
	}
	st := PostingsStats(pairs, labels.MetricName, 10)
	want := &index.PostingsStats{
		CardinalityMetricsStats: []index.Stat{{Name: "up", Count: 3}, {Name: "h", Count: 1}},
		CardinalityLabelStats:   []index.Stat{{Name: "__name__", Count: 2}, {Name: "job", Count: 2}},
		LabelValueStats: stable([]index.Stat{
			{Name: "__name__", Count: labels.SizeOfLabels("__name__", "up", 3) + labels.SizeOfLabels("__name__", "h", 1)},
			{Name: "job", Count: labels.SizeOfLabels("job", "api", 3) + labels.SizeOfLabels("job", "db", 1)},
		}),
		LabelValuePairsStats: []index.Stat{{Name: "__name__=up", Count: 3}, {Name: "job=api", Count: 3}, {Name: "__name__=h", Count: 1}, {Name: "job=db", Count: 1}},
		NumLabelPairs:        4,
	}
	sameStats(t, "merged", st, want, false)
	if top := PostingsStats(pairs, labels.MetricName, 1).LabelValuePairsStats; len(top) != 1 || top[0].Count != 3 {
		t.Errorf("limit 1: series by label pair %v, want one of count 3", top)
	}
}
