package metrics

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/prometheus/prometheus/model/labels"
	apiv1 "github.com/prometheus/prometheus/web/api/v1"

	"github.com/vispyr/vispyr/internal/pipeline"
)

// withTenant puts the request's X-Scope-OrgID into its context, as Mimir's
// and Tempo's APIs read it, so every ingest and query below works on that
// tenant's TSDB; no header is the default tenant. A query also gets the
// tenant's query timeout.
func (s *Storage) withTenant(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Scope-OrgID")
		if id != "" {
			if err := ValidTenantID(id); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
		}
		ctx := pipeline.WithTenant(r.Context(), id)
		if d := s.limits.ForTenant(pipeline.Tenant(ctx)).QueryTimeout; d > 0 && !isIngestPath(r.URL.Path) {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, d)
			defer cancel()
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

func isIngestPath(p string) bool {
	switch p {
	case "/api/v1/write", "/api/v1/metrics/write", "/api/v1/otlp/v1/metrics":
		return true
	}
	return false
}

// tsdbStatus answers /api/v1/status/tsdb from the tenant's heads
// (headStats, headChunks); the default tenant's goes to Prometheus's
// handler (next), which asks adminStats and headChunksGatherer.
func (s *Storage) tsdbStatus(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := pipeline.Tenant(r.Context())
		if id == pipeline.DefaultTenant {
			next.ServeHTTP(w, r)
			return
		}
		limit := 10
		if v := r.FormValue("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 10000 {
				writeAPIError(w, http.StatusBadRequest, "bad_data", "limit must be a positive number not above 10000")
				return
			}
			limit = n
		}
		st := apiv1.TSDBStatus{
			SeriesCountByMetricName: []apiv1.TSDBStat{}, LabelValueCountByLabelName: []apiv1.TSDBStat{},
			MemoryInBytesByLabelName: []apiv1.TSDBStat{}, SeriesCountByLabelValuePair: []apiv1.TSDBStat{},
		}
		if t := s.lookup(id); t != nil {
			hs, err := t.headStats(r.Context(), labels.MetricName, limit)
			if err != nil {
				writeAPIError(w, http.StatusInternalServerError, "internal", err.Error())
				return
			}
			chunks, err := t.headChunks()
			if err != nil {
				writeAPIError(w, http.StatusInternalServerError, "internal", err.Error())
				return
			}
			st.HeadStats = apiv1.HeadStats{NumSeries: hs.NumSeries, MinTime: hs.MinTime, MaxTime: hs.MaxTime,
				NumLabelPairs: hs.IndexPostingStats.NumLabelPairs, ChunkCount: chunks}
			st.SeriesCountByMetricName = apiv1.TSDBStatsFromIndexStats(hs.IndexPostingStats.CardinalityMetricsStats)
			st.LabelValueCountByLabelName = apiv1.TSDBStatsFromIndexStats(hs.IndexPostingStats.CardinalityLabelStats)
			st.MemoryInBytesByLabelName = apiv1.TSDBStatsFromIndexStats(hs.IndexPostingStats.LabelValueStats)
			st.SeriesCountByLabelValuePair = apiv1.TSDBStatsFromIndexStats(hs.IndexPostingStats.LabelValuePairsStats)
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "success", "data": st})
	})
}
