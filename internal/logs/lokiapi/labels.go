package lokiapi

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/logs/logql"
)

type dataResponse struct {
	Status string `json:"status"`
	Data   any    `json:"data"`
}

// selectorMatchers reads a stream selector from a parameter that Loki and
// Grafana fill either with a bare selector or with a whole query (Grafana's
// stats and volume requests carry the user's query): the matchers of every
// selector in it are returned, one set per selector. Empty means none.
func selectorMatchers(q string) ([][]*labels.Matcher, error) {
	if strings.TrimSpace(q) == "" {
		return nil, nil
	}
	if ms, err := logql.ParseMatchers(q); err == nil {
		return [][]*labels.Matcher{ms}, nil
	}
	expr, err := logql.ParseExpr(q)
	if err != nil {
		return nil, err
	}
	var sets [][]*labels.Matcher
	logql.Walk(expr, func(e logql.Expr) {
		if l, ok := e.(*logql.LogExpr); ok {
			sets = append(sets, l.Matchers)
		}
	})
	return sets, nil
}

// labelParams reads the range and optional selector of the label endpoints.
func (a *API) labelParams(r *http.Request, selectorParam string) (start, end int64, ms []*labels.Matcher, err error) {
	if err = form(r); err != nil {
		return
	}
	s, e, err := timeRange(r, defaultLabelsSince)
	if err != nil {
		return
	}
	sets, err := selectorMatchers(r.Form.Get(selectorParam))
	if err != nil {
		return
	}
	if len(sets) > 0 {
		ms = sets[0]
	}
	return s.UnixNano(), e.UnixNano(), ms, nil
}

// labels serves /loki/api/v1/labels: the label names of streams in range.
func (a *API) labels(r *http.Request) (any, error) {
	start, end, ms, err := a.labelParams(r, "query")
	if err != nil {
		return nil, err
	}
	names, err := a.q.Labels(r.Context(), tenant(r), start, end, ms)
	if err != nil {
		return nil, err
	}
	return dataResponse{"success", nonNil(names)}, nil
}

// labelValues serves /loki/api/v1/label/<name>/values.
func (a *API) labelValues(r *http.Request) (any, error) {
	start, end, ms, err := a.labelParams(r, "query")
	if err != nil {
		return nil, err
	}
	vals, err := a.q.LabelValues(r.Context(), tenant(r), r.PathValue("name"), start, end, ms)
	if err != nil {
		return nil, err
	}
	return dataResponse{"success", nonNil(vals)}, nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// series serves /loki/api/v1/series: the label sets of streams matching any
// of the match[] selectors.
func (a *API) series(r *http.Request) (any, error) {
	if err := form(r); err != nil {
		return nil, err
	}
	s, e, err := timeRange(r, defaultLabelsSince)
	if err != nil {
		return nil, err
	}
	selectors := append(r.Form["match[]"], r.Form["match"]...)
	if len(selectors) == 0 {
		selectors = []string{""}
	}
	seen := map[string]bool{}
	out := []labels.Labels{}
	for _, sel := range selectors {
		sets, err := selectorMatchers(sel)
		if err != nil {
			return nil, err
		}
		if len(sets) == 0 {
			sets = [][]*labels.Matcher{nil}
		}
		for _, ms := range sets {
			ls, err := a.q.Series(r.Context(), tenant(r), s.UnixNano(), e.UnixNano(), ms)
			if err != nil {
				return nil, err
			}
			for _, l := range ls {
				if k := l.String(); !seen[k] {
					seen[k] = true
					out = append(out, l)
				}
			}
		}
	}
	slices.SortFunc(out, labels.Compare)
	return dataResponse{"success", out}, nil
}

type indexStats struct {
	Streams uint64 `json:"streams"`
	Chunks  uint64 `json:"chunks"`
	Entries uint64 `json:"entries"`
	Bytes   uint64 `json:"bytes"`
}

// indexStats serves /loki/api/v1/index/stats (Grafana's "this query will
// process about …"): streams, chunks, entries and bytes of the query's
// selectors in range.
func (a *API) indexStats(r *http.Request) (any, error) {
	if err := form(r); err != nil {
		return nil, err
	}
	s, e, err := timeRange(r, defaultQuerySince)
	if err != nil {
		return nil, err
	}
	sets, err := selectorMatchers(r.Form.Get("query"))
	if err != nil {
		return nil, err
	}
	var out indexStats
	for _, ms := range sets {
		st, err := a.q.Stats(r.Context(), tenant(r), s.UnixNano(), e.UnixNano(), ms)
		if err != nil {
			return nil, err
		}
		out.Streams += st.Streams
		out.Chunks += st.Chunks
		out.Entries += st.Entries
		out.Bytes += st.Bytes
	}
	return out, nil
}

// volumeParams are the parameters of /index/volume and /index/volume_range.
type volumeParams struct {
	start, end time.Time
	matchers   []*labels.Matcher
	targets    []string
	byLabels   bool // aggregateBy=labels
	limit      int
}

func (a *API) parseVolume(r *http.Request) (volumeParams, error) {
	var p volumeParams
	if err := form(r); err != nil {
		return p, err
	}
	var err error
	if p.start, p.end, err = timeRange(r, defaultLabelsSince); err != nil {
		return p, err
	}
	if err := a.checkLength(p.start, p.end); err != nil {
		return p, err
	}
	sets, err := selectorMatchers(r.Form.Get("query"))
	if err != nil {
		return p, err
	}
	if len(sets) == 0 {
		return p, errBadRequest("query parameter is required")
	}
	p.matchers = sets[0]
	if t := r.Form.Get("targetLabels"); t != "" {
		for _, n := range strings.Split(t, ",") {
			if n = strings.TrimSpace(n); n != "" {
				p.targets = append(p.targets, n)
			}
		}
	} else {
		for _, m := range p.matchers {
			if !slices.Contains(p.targets, m.Name) {
				p.targets = append(p.targets, m.Name)
			}
		}
	}
	switch r.Form.Get("aggregateBy") {
	case "", "series":
	case "labels":
		p.byLabels = true
	default:
		return p, errBadRequest("invalid aggregation option %q, must be one of series, labels", r.Form.Get("aggregateBy"))
	}
	p.limit = defaultLimit
	if v := r.Form.Get("limit"); v != "" {
		if p.limit, err = strconv.Atoi(v); err != nil || p.limit <= 0 {
			return p, errBadRequest("limit must be a positive value")
		}
	}
	return p, nil
}

// groups maps a stream to the volume series it counts in: its target labels
// (aggregateBy=series), or one series per target label it has, valued ""
// (aggregateBy=labels).
func (p volumeParams) groups(ls labels.Labels) []labels.Labels {
	if p.byLabels {
		var out []labels.Labels
		for _, n := range p.targets {
			if ls.Get(n) != "" {
				out = append(out, labels.FromStrings(n, ""))
			}
		}
		return out
	}
	b := labels.NewScratchBuilder(len(p.targets))
	for _, n := range p.targets {
		if v := ls.Get(n); v != "" {
			b.Add(n, v)
		}
	}
	b.Sort()
	return []labels.Labels{b.Labels()}
}

// aggregate sums stream volumes into their groups, keeping the limit series
// of largest volume. Bytes are bucketed by bucket start.
func (p volumeParams) aggregate(svs []logs.StreamVolume) []*volSeries {
	byKey := map[string]*volSeries{}
	for _, sv := range svs {
		for _, g := range p.groups(sv.Labels) {
			k := g.String()
			s := byKey[k]
			if s == nil {
				s = &volSeries{labels: g, buckets: map[int64]uint64{}}
				byKey[k] = s
			}
			for _, b := range sv.Buckets {
				s.buckets[b.T] += b.Bytes
				s.total += b.Bytes
			}
		}
	}
	out := make([]*volSeries, 0, len(byKey))
	for _, s := range byKey {
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b *volSeries) int {
		if a.total != b.total {
			if a.total > b.total {
				return -1
			}
			return 1
		}
		return labels.Compare(a.labels, b.labels)
	})
	if len(out) > p.limit {
		out = out[:p.limit]
	}
	return out
}

type volSeries struct {
	labels  labels.Labels
	buckets map[int64]uint64 // bucket start (Unix ns) → bytes
	total   uint64
}

// volume serves /loki/api/v1/index/volume: bytes per group over the range,
// as a vector at the range's end.
func (a *API) volume(r *http.Request) (any, error) {
	p, err := a.parseVolume(r)
	if err != nil {
		return nil, err
	}
	svs, err := a.q.Volume(r.Context(), tenant(r), logs.VolumeParams{Matchers: p.matchers, Start: p.start.UnixNano(), End: p.end.UnixNano()})
	if err != nil {
		return nil, err
	}
	vec := promql.Vector{}
	for _, s := range p.aggregate(svs) {
		vec = append(vec, promql.Sample{Metric: s.labels, T: p.end.UnixMilli(), F: float64(s.total)})
	}
	return dataResponse{"success", map[string]any{"resultType": "vector", "result": vectorJSON(vec)}}, nil
}

// volumeRange serves /loki/api/v1/index/volume_range: bytes per group per step.
func (a *API) volumeRange(r *http.Request) (any, error) {
	p, err := a.parseVolume(r)
	if err != nil {
		return nil, err
	}
	step, err := parseStep(r, p.start, p.end)
	if err != nil {
		return nil, err
	}
	svs, err := a.q.Volume(r.Context(), tenant(r), logs.VolumeParams{
		Matchers: p.matchers, Start: p.start.UnixNano(), End: p.end.UnixNano(), Step: int64(step),
	})
	if err != nil {
		return nil, err
	}
	m := promql.Matrix{}
	for _, s := range p.aggregate(svs) {
		ser := promql.Series{Metric: s.labels}
		for t, b := range s.buckets {
			ser.Floats = append(ser.Floats, promql.FPoint{T: t / int64(time.Millisecond), F: float64(b)})
		}
		slices.SortFunc(ser.Floats, func(a, b promql.FPoint) int { return int(a.T - b.T) })
		m = append(m, ser)
	}
	return dataResponse{"success", map[string]any{"resultType": "matrix", "result": matrixJSON(m)}}, nil
}
