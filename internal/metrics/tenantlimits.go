package metrics

import (
	"context"
	"fmt"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb"
	"golang.org/x/time/rate"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// tenantLimiter applies one tenant's ingest limits (config.TenantLimits), with
// Mimir's messages. The messages name Vispyr's setting where Mimir names its
// flag, so the user knows what to change.
type tenantLimiter struct {
	cfg  config.TenantLimits
	rate *rate.Limiter // nil: no ingestion rate limit
}

func (s *Storage) newTenantLimiter(id string) *tenantLimiter {
	cfg := s.limits.ForTenant(id)
	l := &tenantLimiter{cfg: cfg}
	if cfg.IngestionRate > 0 {
		l.rate = rate.NewLimiter(rate.Limit(cfg.IngestionRate), cfg.IngestionBurstSize)
	}
	return l
}

// limitHint ends every limit message, as Mimir's do.
func limitHint(id, key string) string {
	return fmt.Sprintf(" (err-mimir-%s). To adjust the related per-tenant limit, configure limits.tenant.%s, or contact your service administrator.", id, key)
}

// admitRate takes n items (samples, histograms, exemplars) from the tenant's
// ingestion rate; a request over it is refused whole, as Mimir's distributor
// refuses it.
func (l *tenantLimiter) admitRate(n int) error {
	if l == nil || l.rate == nil || n == 0 {
		return nil
	}
	if l.rate.AllowN(time.Now(), n) {
		return nil
	}
	return &pipeline.LimitError{Msg: fmt.Sprintf("the request has been rejected because the tenant exceeded the ingestion rate limit, set to %v items/s with a maximum allowed burst of %d. This limit is applied on the total number of samples, histograms and exemplars received",
		l.cfg.IngestionRate, l.cfg.IngestionBurstSize) + limitHint("tenant-max-ingestion-rate", "ingestion_rate")}
}

// checkLabels applies the label limits to a new series (400 when broken).
func (l *tenantLimiter) checkLabels(ls labels.Labels) error {
	if l == nil {
		return nil
	}
	c := l.cfg
	if c.MaxLabelNamesPerSeries > 0 && ls.Len() > c.MaxLabelNamesPerSeries {
		s, more := truncated(ls.String())
		return invalidf("received a series whose number of labels exceeds the limit (actual: %d, limit: %d) series: '%s%s'"+
			limitHint("max-label-names-per-series", "max_label_names_per_series"), ls.Len(), c.MaxLabelNamesPerSeries, s, more)
	}
	if c.MaxLabelNameLength <= 0 && c.MaxLabelValueLength <= 0 {
		return nil
	}
	var err error
	ls.Range(func(lb labels.Label) {
		switch {
		case err != nil:
		case c.MaxLabelNameLength > 0 && len(lb.Name) > c.MaxLabelNameLength:
			n, _ := truncated(lb.Name)
			s, _ := truncated(ls.String())
			err = invalidf("received a series whose label name length exceeds the limit, label: '%s' series: '%s'"+
				limitHint("label-name-too-long", "max_label_name_length"), n, s)
		case c.MaxLabelValueLength > 0 && len(lb.Value) > c.MaxLabelValueLength:
			v, _ := truncated(lb.Value)
			s, _ := truncated(ls.String())
			err = invalidf("received a series whose label value length exceeds the limit, label: '%s', value: '%s' (truncated) series: '%s'"+
				limitHint("label-value-too-long", "max_label_value_length"), lb.Name, v, s)
		}
	})
	return err
}

func invalidf(format string, args ...any) error {
	return pipeline.Invalid(fmt.Errorf(format, args...))
}

// truncated cuts s to Mimir's 200 bytes; more is "…" when it did.
func truncated(s string) (_, more string) {
	if len(s) <= 200 {
		return s, ""
	}
	return s[:200], "…"
}

// checkSeries refuses a series the head does not hold yet once the tenant
// has max_active_series of them (429). Below the limit it costs one load; at
// the limit, an index lookup tells a known series from a new one.
func (l *tenantLimiter) checkSeries(t *tenantDB, ls labels.Labels) error {
	if l == nil || l.cfg.MaxActiveSeries <= 0 || t.numSeries() < uint64(l.cfg.MaxActiveSeries) {
		return nil
	}
	if headHas(t.db, ls) || t.own != nil && t.own.head.HasSeries(ls) {
		return nil
	}
	return &pipeline.LimitError{Msg: fmt.Sprintf("per-user series limit of %d exceeded", l.cfg.MaxActiveSeries) +
		limitHint("max-series-per-user", "max_active_series")}
}

// headHas reports whether the head holds the series ls.
func headHas(db *tsdb.DB, ls labels.Labels) bool {
	ix, err := db.Head().Index()
	if err != nil {
		return false
	}
	defer ix.Close()
	ms := make([]*labels.Matcher, 0, ls.Len())
	ls.Range(func(l labels.Label) { ms = append(ms, labels.MustNewMatcher(labels.MatchEqual, l.Name, l.Value)) })
	p, err := tsdb.PostingsForMatchers(context.Background(), ix, ms...)
	if err != nil {
		return false
	}
	var b labels.ScratchBuilder
	for p.Next() {
		if err := ix.Series(p.At(), &b, nil); err == nil && labels.Equal(b.Labels(), ls) {
			return true
		}
	}
	return false
}

// check applies the label and series limits to a new series.
func (t *tenantDB) check(ls labels.Labels) error {
	if err := t.limits.checkLabels(ls); err != nil {
		return err
	}
	return t.limits.checkSeries(t, ls)
}

// numSeries is the series in the tenant's heads.
func (t *tenantDB) numSeries() uint64 {
	n := t.db.Head().NumSeries()
	if t.own != nil {
		n += uint64(t.own.head.NumSeries())
	}
	return n
}
