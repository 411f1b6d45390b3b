package metrics

import (
	"math"
	"net/http"
	"sort"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/model/value"
	"github.com/prometheus/prometheus/promql/parser"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"google.golang.org/protobuf/proto"
)

// federateHandler answers GET /federate as Prometheus's own federation
// endpoint does: the newest sample within the lookback delta of every series
// matching any match[] selector, grouped by metric name, in the exposition
// format the scraper asks for (text by default), with timestamps.
func federateHandler(q storage.Queryable, lookback time.Duration) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			http.Error(w, "error parsing form values: "+err.Error(), http.StatusBadRequest)
			return
		}
		sets, err := parser.NewParser(parser.Options{}).ParseMetricSelectors(r.Form["match[]"])
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if len(sets) == 0 {
			// Prometheus answers an empty 200 without match[].
			return
		}
		now := time.Now().UnixMilli()
		mint := now - lookback.Milliseconds()
		querier, err := q.Querier(mint, now)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		defer querier.Close()
		hints := &storage.SelectHints{Start: mint, End: now, Step: lookback.Milliseconds(), Func: "federate"}
		var ss []storage.SeriesSet
		for _, ms := range sets {
			ss = append(ss, querier.Select(r.Context(), true, hints, ms...))
		}
		set := storage.NewMergeSeriesSet(ss, 0, storage.ChainedSeriesMerge)
		families := map[string]*dto.MetricFamily{}
		var it chunkenc.Iterator
		for set.Next() {
			s := set.At()
			it = s.Iterator(it)
			t, v, ok := newestFloat(it, now)
			if !ok || t < mint {
				continue
			}
			name := s.Labels().Get(labels.MetricName)
			mf := families[name]
			if mf == nil {
				mf = &dto.MetricFamily{Name: proto.String(name), Type: dto.MetricType_UNTYPED.Enum()}
				families[name] = mf
			}
			m := &dto.Metric{TimestampMs: proto.Int64(t), Untyped: &dto.Untyped{Value: proto.Float64(v)}}
			s.Labels().Range(func(l labels.Label) {
				if l.Name != labels.MetricName {
					m.Label = append(m.Label, &dto.LabelPair{Name: proto.String(l.Name), Value: proto.String(l.Value)})
				}
			})
			mf.Metric = append(mf.Metric, m)
		}
		if err := set.Err(); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		names := make([]string, 0, len(families))
		for n := range families {
			names = append(names, n)
		}
		sort.Strings(names)
		format := expfmt.Negotiate(r.Header)
		w.Header().Set("Content-Type", string(format))
		enc := expfmt.NewEncoder(w, format)
		for _, n := range names {
			if err := enc.Encode(families[n]); err != nil {
				return // the scraper went away
			}
		}
	})
}

// newestFloat returns the last float sample at or before maxt; a stale
// marker means the series ended.
func newestFloat(it chunkenc.Iterator, maxt int64) (t int64, v float64, ok bool) {
	for {
		typ := it.Next()
		if typ == chunkenc.ValNone {
			break
		}
		if typ != chunkenc.ValFloat {
			continue // native histograms are not federated in the text format
		}
		st, sv := it.At()
		if st > maxt {
			break
		}
		t, v, ok = st, sv, true
	}
	if ok && value.IsStaleNaN(v) {
		return 0, math.NaN(), false
	}
	return t, v, ok
}
