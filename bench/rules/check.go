package main

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/promql/parser"
)

// agreement is how a target's recorded series compare with its peer's
// evaluation of the same expressions at the same instants.
type agreement struct {
	rules, samples, identical, close int
	maxRel                           float64
	worst                            string
}

// relTolerance is how far apart two values may be and still agree: Prometheus
// 2.42's engine and the one Vispyr embeds add in different orders (Kahan
// summation in sum and avg since 2.50), so the last bits may differ.
const relTolerance = 1e-9

func (a agreement) String() string {
	s := fmt.Sprintf("%d rules, %d series: %d bit-identical, %d within %.0e, %d apart",
		a.rules, a.samples, a.identical, a.close, relTolerance, a.samples-a.identical-a.close)
	if a.maxRel > 0 {
		s += fmt.Sprintf("; largest relative difference %.2e (%s)", a.maxRel, a.worst)
	}
	return s
}

// checkRecorded compares, for each sampled recording rule, the samples rec
// wrote at its last evaluation with what peer's PromQL says of the rule's
// expression at those very timestamps. The two run their groups at different
// offsets (each hashes the group's name its own way), so recorded series are
// not compared with each other directly. Rules that read recorded series
// are left out: each target reads its own, recorded at other instants.
func checkRecorded(rec, peer *target, rules []sampledRule) (agreement, error) {
	var a agreement
	now := time.Now()
	for _, sr := range rules {
		r := sr.rule
		if r.Record == "" || readsRecorded(r.Expr) {
			continue
		}
		got, err := query(rec.queryURL, fmt.Sprintf("%s{%s}[1m]", r.Record, sr.matchers), now)
		if err != nil {
			return a, fmt.Errorf("%s: %s: %w", rec.name, r.Record, err)
		}
		if len(got) == 0 {
			return a, fmt.Errorf("%s recorded no %s", rec.name, r.Record)
		}
		a.rules++
		at := map[int64][]sample{} // the last sample of each series, by timestamp
		for _, s := range got {
			at[s.t] = append(at[s.t], s)
		}
		for t, samples := range at {
			want, err := query(peer.queryURL, r.Expr, time.UnixMilli(t))
			if err != nil {
				return a, fmt.Errorf("%s: %s: %w", peer.name, r.Record, err)
			}
			byLabels := map[string]float64{}
			for _, w := range want {
				byLabels[w.labels] = w.v
			}
			for _, s := range samples {
				a.samples++
				w, ok := byLabels[s.labels]
				switch {
				case !ok:
					a.note(math.Inf(1), r.Record+s.labels+" missing")
				case math.Float64bits(w) == math.Float64bits(s.v) || (math.IsNaN(w) && math.IsNaN(s.v)):
					a.identical++
				default:
					rel := math.Abs(w-s.v) / math.Max(math.Abs(w), math.Abs(s.v))
					if rel <= relTolerance {
						a.close++
					}
					a.note(rel, fmt.Sprintf("%s%s: %v vs %v", r.Record, s.labels, s.v, w))
				}
			}
		}
	}
	return a, nil
}

func (a *agreement) note(rel float64, what string) {
	if rel > a.maxRel {
		a.maxRel, a.worst = rel, what
	}
}

// sampledRule is a recording rule and the matchers that pick its group's
// series among those other groups record under the same name.
type sampledRule struct {
	rule     rule
	matchers string
}

// readsRecorded says whether expr reads a series named like a recording rule.
func readsRecorded(expr string) bool {
	e, err := promParser.ParseExpr(expr)
	if err != nil {
		return false
	}
	found := false
	parser.Inspect(e, func(n parser.Node, _ []parser.Node) error {
		if vs, ok := n.(*parser.VectorSelector); ok && strings.Contains(vs.Name, ":") {
			found = true
		}
		return nil
	})
	return found
}

// sample is one series' last sample; labels leave __name__ out.
type sample struct {
	labels string
	t      int64
	v      float64
}

// query asks a Prometheus API for q at t: a vector's samples, or the last
// sample of each series of a matrix.
func query(base, q string, t time.Time) ([]sample, error) {
	u := base + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', 3, 64)}}.Encode()
	resp, err := http.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  []any             `json:"value"`
				Values [][]any           `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %q: %w", q, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %q: %s", q, body.Error)
	}
	var out []sample
	for _, r := range body.Data.Result {
		p := r.Value
		if len(r.Values) > 0 {
			p = r.Values[len(r.Values)-1]
		}
		if len(p) != 2 {
			continue
		}
		ts, _ := p[0].(float64)
		str, _ := p[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %q: %w", q, str, err)
		}
		out = append(out, sample{labels: labelString(r.Metric), t: int64(math.Round(ts * 1000)), v: v})
	}
	return out, nil
}

func labelString(m map[string]string) string {
	names := make([]string, 0, len(m))
	for n := range m {
		if n != "__name__" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteByte('{')
	for i, n := range names {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "%s=%q", n, m[n])
	}
	b.WriteByte('}')
	return b.String()
}
