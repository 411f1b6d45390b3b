package metrics

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/model/exemplar"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// TestOwnHeadExemplarsSurviveRestarts appends exemplars through the V2
// appender (as remote write and OTLP do, with their samples) and the V1
// one (the span-metrics generator's, an exemplar alone in a commit), in
// two tenants, and finds every one answered by the exemplar querier after
// a graceful restart and after a kill -9 (the data directory copied while
// the store runs): with the own head as with the TSDB's.
func TestOwnHeadExemplarsSurviveRestarts(t *testing.T) {
	base := time.Now().Add(-time.Hour).Truncate(time.Second).UnixMilli()
	want := exemplarsAcrossRestarts(t, config.HeadPrometheus, base)
	if n, all := strings.Count(want, "trace_id"), len(exemplarTenants)*exemplarSeries*(exemplarRounds+1); n != all {
		t.Fatalf("the TSDB's head answers %d exemplars, want %d", n, all)
	}
	if got := exemplarsAcrossRestarts(t, config.HeadVispyr, base); got != want {
		t.Fatalf("the own head answers other exemplars than the TSDB's:\nown:  %s\nTSDB: %s", got, want)
	}
}

const exemplarSeries, exemplarRounds = 30, 5

// exemplarsAcrossRestarts writes exemplars from base on with metrics.head
// set to headKind and returns what the exemplar querier answers, checking that
// it answers the same after a graceful restart and after a crash.
func exemplarsAcrossRestarts(t *testing.T, headKind string, base int64) string {
	t.Helper()
	cfg := config.Default()
	cfg.Metrics.Head = headKind
	open := func(dir string) *Storage {
		s, err := Open(cfg.Metrics, cfg.Limits, dir, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	dir := t.TempDir()
	s := open(dir)
	writeExemplars(t, s, base)
	want := allExemplars(t, s)
	crashed := crashCopy(t, dir)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	for when, dir := range map[string]string{"a graceful restart": dir, "a kill -9": crashed} {
		s := open(dir)
		if got := allExemplars(t, s); got != want {
			t.Errorf("metrics.head %s: after %s %d exemplars are answered, want %d:\n%s", headKind, when,
				strings.Count(got, "trace_id"), strings.Count(want, "trace_id"), got)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	return want
}

// exemplarTenants are the tenants writeExemplars writes to.
var exemplarTenants = []string{"", "team-a"}

func tenantCtx(tenant string) context.Context {
	if tenant == "" {
		return context.Background()
	}
	return pipeline.WithTenant(context.Background(), tenant)
}

// writeExemplars appends samples each with an exemplar through the V2
// appender, one commit a round, and then one exemplar alone through the
// V1 appender, to a series it appended a sample to before. Each tenant
// gets all series but the second tenant's series and exemplars are its own.
func writeExemplars(t *testing.T, s *Storage, base int64) {
	t.Helper()
	for _, tenant := range exemplarTenants {
		ctx := tenantCtx(tenant)
		for r := range exemplarRounds {
			app := s.AppenderV2(ctx)
			for i := range exemplarSeries {
				ls := labels.FromStrings("__name__", "exemplar_test", "i", strconv.Itoa(i))
				ts := base + int64(r)*15000
				ex := []exemplar.Exemplar{{Labels: labels.FromStrings("trace_id", fmt.Sprintf("%s%x-%d", tenant, i, r)), Value: float64(r), Ts: ts, HasTs: true}}
				if _, err := app.Append(0, ls, 0, ts, float64(r), nil, nil, storage.AOptions{Exemplars: ex}); err != nil {
					t.Fatal(err)
				}
			}
			if err := app.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		v1 := s.Appender(ctx)
		for i := range exemplarSeries {
			ls := labels.FromStrings("__name__", "exemplar_test", "i", strconv.Itoa(i))
			ex := exemplar.Exemplar{Labels: labels.FromStrings("trace_id", fmt.Sprintf("%sv1-%x", tenant, i)), Value: 9, Ts: base + exemplarRounds*15000, HasTs: true}
			if _, err := v1.AppendExemplar(0, ls, ex); err != nil {
				t.Fatal(err)
			}
		}
		if err := v1.Commit(); err != nil {
			t.Fatal(err)
		}
	}
}

// allExemplars lists every exemplar of every tenant the exemplar querier
// answers, sorted.
func allExemplars(t *testing.T, s *Storage) string {
	t.Helper()
	var out []string
	for _, tenant := range exemplarTenants {
		q, err := s.ExemplarQuerier(tenantCtx(tenant))
		if err != nil {
			t.Fatal(err)
		}
		res, err := q.Select(0, 1<<62, []*labels.Matcher{labels.MustNewMatcher(labels.MatchRegexp, "__name__", ".+")})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			for _, e := range r.Exemplars {
				out = append(out, fmt.Sprintf("%s %s %s %g@%d", tenant, r.SeriesLabels, e.Labels, e.Value, e.Ts))
			}
		}
	}
	slices.Sort(out)
	return strings.Join(out, "\n")
}
