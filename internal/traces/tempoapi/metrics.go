package tempoapi

import (
	"encoding/json"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/traceql"
)

type metricsSeries struct {
	Labels    []kvJSON       `json:"labels"`
	Samples   []sampleJSON   `json:"samples,omitempty"`
	Exemplars []exemplarJSON `json:"exemplars,omitempty"`
}

type sampleJSON struct {
	TimestampMs string     `json:"timestampMs"`
	Value       jsonDouble `json:"value"`
}

type exemplarJSON struct {
	Labels      []kvJSON   `json:"labels"`
	Value       jsonDouble `json:"value"`
	TimestampMs string     `json:"timestampMs"`
}

type instantSeries struct {
	Labels []kvJSON   `json:"labels"`
	Value  jsonDouble `json:"value"`
}

// jsonDouble encodes like protojson: NaN and infinities as strings.
type jsonDouble float64

func (d jsonDouble) MarshalJSON() ([]byte, error) {
	f := float64(d)
	switch {
	case math.IsNaN(f):
		return []byte(`"NaN"`), nil
	case math.IsInf(f, 1):
		return []byte(`"Infinity"`), nil
	case math.IsInf(f, -1):
		return []byte(`"-Infinity"`), nil
	}
	return json.Marshal(f)
}

func strKV(k, v string) kvJSON { return kvJSON{Key: k, Value: anyValue{StringValue: &v}} }

// parseMetricsTime accepts Unix seconds (integer or fractional), Unix nanoseconds
// and RFC 3339, as Tempo does.
func parseMetricsTime(name, v string, def time.Time) (time.Time, error) {
	if v == "" {
		return def, nil
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n > 1e14 { // nanoseconds
			return time.Unix(0, n), nil
		}
		return time.Unix(n, 0), nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f >= 0 && f < 1e12 {
		return time.Unix(0, int64(f*1e9)), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	return time.Time{}, badf("invalid %s %q: want Unix seconds, Unix nanoseconds or RFC 3339", name, v)
}

func parseStep(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	if d, err := time.ParseDuration(v); err == nil && d > 0 {
		return d, nil
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && f > 0 {
		return time.Duration(f * float64(time.Second)), nil
	}
	return 0, badf("invalid step %q: want a duration such as 30s", v)
}

// metricsRequest parses q, start, end and step shared by both metrics endpoints.
func (a *api) metricsRequest(r *http.Request) (*traceql.Query, traceql.MetricsRequest, error) {
	v := r.URL.Query()
	var req traceql.MetricsRequest
	q := strings.TrimSpace(v.Get("q"))
	if q == "" {
		return nil, req, badf("missing q: a TraceQL metrics query such as {} | rate()")
	}
	query, err := traceql.Parse(q)
	if err != nil {
		return nil, req, badf("invalid TraceQL query: %v", err)
	}
	if !query.IsMetrics() {
		return nil, req, badf("invalid TraceQL metrics query: %q has no metrics function such as rate()", q)
	}
	now := time.Now()
	if req.End, err = parseMetricsTime("end", v.Get("end"), now); err != nil {
		return nil, req, err
	}
	if req.Start, err = parseMetricsTime("start", v.Get("start"), req.End.Add(-time.Hour)); err != nil {
		return nil, req, err
	}
	if !req.End.After(req.Start) {
		return nil, req, badf("invalid range: end must be after start")
	}
	if req.Step, err = parseStep(v.Get("step")); err != nil {
		return nil, req, err
	}
	if req.Step > 0 && req.End.Sub(req.Start)/req.Step > maxIntervals {
		return nil, req, badf("step of %v is too small, minimum step for given range is %v", req.Step, req.End.Sub(req.Start)/maxIntervals)
	}
	if a.queryMaxBytes > 0 {
		req.Memory = limits.NewQueryMemory(a.queryMaxBytes, "traces.query_max_memory_bytes", a.queryMemory)
	}
	return query, req, nil
}

// maxIntervals bounds the steps of a metrics query, as Tempo's
// query_frontend.metrics.max_intervals does (with its message).
const maxIntervals = 11000

func labelsJSON(attrs []traceql.Attribute) []kvJSON {
	out := make([]kvJSON, 0, len(attrs))
	for _, at := range attrs {
		out = append(out, kvJSON{Key: at.Key, Value: toAnyValue(at.Value)})
	}
	return out
}

func (a *api) queryRange(w http.ResponseWriter, r *http.Request) {
	query, req, err := a.metricsRequest(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	if req.Exemplars, err = intParam(r, "exemplars", 0); err != nil {
		a.fail(w, r, err)
		return
	}
	defer req.Memory.Release() // once the answer is written
	res, err := a.store.QueryMetrics(r.Context(), tenant(r), query, req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := struct {
		Series []metricsSeries `json:"series"`
		Status string          `json:"status"`
	}{Series: []metricsSeries{}, Status: "COMPLETE"}
	for _, s := range res.Series {
		ms := metricsSeries{Labels: labelsJSON(s.Labels)}
		for _, smp := range s.Samples {
			ms.Samples = append(ms.Samples, sampleJSON{strconv.FormatInt(smp.TimestampMs, 10), jsonDouble(smp.Value)})
		}
		for _, ex := range s.Exemplars {
			labels := []kvJSON{strKV("trace:id", ex.TraceID)}
			if ex.SpanID != "" {
				labels = append(labels, strKV("span:id", ex.SpanID))
			}
			ms.Exemplars = append(ms.Exemplars, exemplarJSON{labels, jsonDouble(ex.Value), strconv.FormatInt(ex.TimestampMs, 10)})
		}
		out.Series = append(out.Series, ms)
	}
	writeJSON(w, out)
}

// queryInstant evaluates over [start, end] as one step and returns one value per series.
func (a *api) queryInstant(w http.ResponseWriter, r *http.Request) {
	query, req, err := a.metricsRequest(r)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	req.Step = req.End.Sub(req.Start)
	defer req.Memory.Release()
	res, err := a.store.QueryMetrics(r.Context(), tenant(r), query, req)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	out := struct {
		Series []instantSeries `json:"series"`
	}{Series: []instantSeries{}}
	for _, s := range res.Series {
		if len(s.Samples) == 0 {
			continue
		}
		out.Series = append(out.Series, instantSeries{labelsJSON(s.Labels), jsonDouble(s.Samples[len(s.Samples)-1].Value)})
	}
	writeJSON(w, out)
}
