package logql

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql"

	"github.com/vispyr/vispyr/internal/logs"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// fixture: app=api logs a logfmt line every 10 s for 10 minutes (every
// fourth an error), app=web a JSON line every 20 s from t0+5s.
func fixture() *memQuerier {
	m := &memQuerier{}
	api := labels.FromStrings("app", "api", "env", "prod")
	for i := 0; i < 60; i++ {
		level, status := "info", 200
		if i%4 == 0 {
			level, status = "error", 500
		}
		line := fmt.Sprintf(`level=%s status=%d latency=%dms msg="request %d"`, level, status, (i+1)*10, i)
		e := logs.Entry{Timestamp: t0.Add(time.Duration(i) * 10 * time.Second).UnixNano(), Line: line}
		if i%2 == 0 {
			e.Metadata = labels.FromStrings("trace_id", fmt.Sprintf("%032x", i))
		}
		m.add(api, e)
	}
	web := labels.FromStrings("app", "web", "env", "prod")
	for i := 0; i < 30; i++ {
		line := fmt.Sprintf(`{"level":"warn","req":{"path":"/p%d"},"size":"%dKB"}`, i%3, i)
		m.add(web, logs.Entry{Timestamp: t0.Add(5*time.Second + time.Duration(i)*20*time.Second).UnixNano(), Line: line})
	}
	return m
}

func logQuery(t *testing.T, m *memQuerier, q string, limit int, dir logs.Direction) []Row {
	t.Helper()
	res, err := NewEngine(m, Options{}).Exec(context.Background(), Params{
		Query: q, Start: t0, End: t0.Add(time.Hour), Step: time.Minute, Limit: limit, Direction: dir,
	})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if res.Type != "streams" {
		t.Fatalf("%s: result type %s", q, res.Type)
	}
	return res.Entries
}

func TestLogQueryDirectionAndLimit(t *testing.T) {
	m := fixture()
	rows := logQuery(t, m, `{app="api"} |= "error"`, 3, logs.Backward)
	if len(rows) != 3 {
		t.Fatalf("got %d rows, want 3", len(rows))
	}
	// Errors are i = 56, 52, 48 counting from the newest.
	for k, i := range []int{56, 52, 48} {
		if want := t0.Add(time.Duration(i) * 10 * time.Second).UnixNano(); rows[k].Timestamp != want {
			t.Errorf("row %d at %d, want %d", k, rows[k].Timestamp, want)
		}
		if !strings.Contains(rows[k].Line, "level=error") {
			t.Errorf("row %d line %q lacks the filter", k, rows[k].Line)
		}
	}
	sp := m.selects[len(m.selects)-1]
	if len(sp.LineFilters) != 1 || sp.LineFilters[0] != (logs.LineFilter{Op: logs.Contains, Value: "error"}) || sp.Limit != 3 {
		t.Errorf("pushed down %+v, want the line filter and the limit", sp)
	}
	rows = logQuery(t, m, `{env="prod"}`, 2, logs.Forward)
	if len(rows) != 2 || rows[0].Timestamp != t0.UnixNano() || rows[1].Stream.Get("app") != "web" {
		t.Errorf("forward rows %+v, want api at t0 then web at t0+5s", rows)
	}
}

func TestLogPipeline(t *testing.T) {
	m := fixture()
	f := func(q string, want int, check func(Row) string) {
		t.Helper()
		rows := logQuery(t, m, q, 1000, logs.Forward)
		if len(rows) != want {
			t.Errorf("%s: %d rows, want %d", q, len(rows), want)
			return
		}
		for _, r := range rows {
			if msg := check(r); msg != "" {
				t.Errorf("%s: %s (row %+v)", q, msg, r)
				return
			}
		}
	}
	f(`{app="api"} | logfmt | level="error" | status >= 500`, 15, func(r Row) string {
		if r.Parsed.Get("status") != "500" || r.Stream.Get("app") != "api" {
			return "parsed labels wrong"
		}
		return ""
	})
	f(`{app="api"} | logfmt | latency > 500ms`, 10, func(r Row) string { return "" })
	f(`{app="api"} | logfmt | latency > 500ms or level="error"`, 10+13, func(r Row) string { return "" })
	f(`{app="api"} |= "error" or "request 1\"" != "request 0\""`, 15, func(r Row) string { return "" })
	f(`{app="api"} |~ "request [0-9]\"" | logfmt | line_format "{{.level | ToUpper}} {{.msg}}"`, 10, func(r Row) string {
		if !strings.HasPrefix(r.Line, "ERROR request") && !strings.HasPrefix(r.Line, "INFO request") {
			return "line_format not applied: " + r.Line
		}
		return ""
	})
	f(`{app="web"} | json | req_path="/p1" | size > 20KB`, 3, func(r Row) string {
		if r.Parsed.Get("level") != "warn" {
			return "json labels missing"
		}
		return ""
	})
	f(`{app="web"} | json p="req.path", level, size | p="/p2" | label_format lvl=level | drop size`, 10, func(r Row) string {
		if r.Parsed.String() != `{lvl="warn", p="/p2"}` {
			return "label_format rename and drop gave " + r.Parsed.String()
		}
		return ""
	})
	f(`{app="web"} | json p="req.path", level | p="/p2" | label_format where="{{.p}}!" | keep app, where`, 10, func(r Row) string {
		if r.All().String() != `{app="web", where="/p2!"}` {
			return "keep/label_format gave " + r.All().String()
		}
		return ""
	})
	f(`{app="api"} | pattern "level=<level> status=<_> latency=<lat> <_>" | lat="10ms"`, 1, func(r Row) string {
		if r.Parsed.Get("level") != "error" {
			return "pattern did not capture level"
		}
		return ""
	})
	f(`{app="api"} | regexp "msg=\"request (?P<n>\\d+)\"" | n="59"`, 1, func(r Row) string { return "" })
	f(`{app="api"} | trace_id=~".+"`, 30, func(r Row) string {
		if r.Metadata.Get("trace_id") == "" {
			return "structured metadata missing"
		}
		return ""
	})
	f(`{app="web"} | logfmt --strict | __error__="LogfmtParserErr"`, 30, func(r Row) string { return "" })
	f(`{app="api"} | json | __error__!=""`, 60, func(r Row) string {
		if r.Parsed.Get(ErrorLabel) != "JSONParserErr" {
			return "want JSONParserErr"
		}
		return ""
	})
}

func metric(t *testing.T, m *memQuerier, q string, at time.Time) promql.Vector {
	t.Helper()
	res, err := NewEngine(m, Options{}).Exec(context.Background(), Params{Query: q, Start: at, End: at})
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if res.Type != "vector" {
		t.Fatalf("%s: type %s", q, res.Type)
	}
	return res.Vector
}

func vecString(v promql.Vector) string {
	var parts []string
	for _, s := range v {
		parts = append(parts, fmt.Sprintf("%s %.6g", s.Metric.String(), s.F))
	}
	return strings.Join(parts, "; ")
}

func TestInstantMetrics(t *testing.T) {
	m := fixture()
	at := t0.Add(5 * time.Minute)
	f := func(q, want string) {
		t.Helper()
		if got := vecString(metric(t, m, q, at)); got != want {
			t.Errorf("%s:\n got %s\nwant %s", q, got, want)
		}
	}
	// The window is (4m, 5m]: api entries i = 25..30, errors at 28.
	// Structured metadata is part of a series' labels, as in Loki 3.
	f(`count_over_time({app="api"}[1m])`, `{app="api", env="prod"} 3; {app="api", env="prod", trace_id="0000000000000000000000000000001a"} 1; `+
		`{app="api", env="prod", trace_id="0000000000000000000000000000001c"} 1; {app="api", env="prod", trace_id="0000000000000000000000000000001e"} 1`)
	f(`sum(count_over_time({app="api"}[1m]))`, `{} 6`)
	f(`sum by (app) (rate({env="prod"}[1m]))`, `{app="api"} 0.1; {app="web"} 0.05`)
	f(`sum by (level) (count_over_time({app="api"} | logfmt [1m]))`, `{level="error"} 1; {level="info"} 5`)
	f(`sum(bytes_over_time({app="api"} |= "level=error" [1m]))`, fmt.Sprintf("{} %d", len(`level=error status=500 latency=290ms msg="request 28"`)))
	f(`quantile_over_time(0.5, {app="api"} | logfmt | unwrap duration(latency) [1m]) by (app)`, `{app="api"} 0.285`)
	f(`max_over_time({app="api"} | logfmt | unwrap duration(latency) [1m]) by (level)`, `{level="error"} 0.29; {level="info"} 0.31`)
	f(`sum_over_time({app="web"} | json | unwrap bytes(size) [1m]) by (app)`, `{app="web"} 39000`)
	f(`topk(1, sum by (level) (count_over_time({app="api"} | logfmt [1m])))`, `{level="info"} 5`)
	f(`sum(count_over_time({app="api"}[1m])) * 2 + 1`, `{} 13`)
	f(`sum by (level) (count_over_time({app="api"} | logfmt [1m])) > 2`, `{level="info"} 5`)
	f(`sum by (level) (count_over_time({app="api"} | logfmt [1m])) > bool 2`, `{level="error"} 0; {level="info"} 1`)
	f(`sum(count_over_time({app="nope"}[1m])) or vector(0)`, `{} 0`)
	f(`sum(count_over_time({app="api"}[1m])) / sum(count_over_time({app="web"}[1m]))`, `{} 2`)
	f(`count(sum by (level) (count_over_time({app="api"} | logfmt [1m])))`, `{} 2`)
	f(`sum(count_over_time({app="api"}[1m] offset 5m))`, `{} 1`) // (-1m, 0] holds only i = 0
}

func TestRangeMetrics(t *testing.T) {
	m := fixture()
	res, err := NewEngine(m, Options{}).Exec(context.Background(), Params{
		Query: `sum by (level) (count_over_time({app="api"} | logfmt [1m]))`,
		Start: t0.Add(time.Minute), End: t0.Add(12 * time.Minute), Step: time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.Type != "matrix" || len(res.Matrix) != 2 {
		t.Fatalf("got %s with %d series", res.Type, len(res.Matrix))
	}
	info := res.Matrix[1]
	if info.Metric.Get("level") != "info" {
		t.Fatalf("second series %s, want level=info", info.Metric)
	}
	// Steps 1m..10m have data; (9m,10m] holds i = 55..59; 11m and 12m have none.
	if len(info.Floats) != 10 {
		t.Fatalf("info has %d points, want 10: %v", len(info.Floats), info.Floats)
	}
	total := 0.0
	for _, s := range res.Matrix {
		for _, p := range s.Floats {
			total += p.F
		}
	}
	if total != 59 {
		t.Errorf("counts over disjoint windows sum to %v, want 59 (every line but the one at t0, outside (t0, t0+1m])", total)
	}
	if p := info.Floats[0]; p.T != t0.Add(time.Minute).UnixMilli() || p.F != 5 {
		t.Errorf("first point %v, want 5 info lines in (0,1m] (i=1..6 but the error at 4)", p)
	}
}

func TestMetricErrors(t *testing.T) {
	m := fixture()
	e := NewEngine(m, Options{})
	f := func(q, want string, instant bool) {
		t.Helper()
		p := Params{Query: q, Start: t0, End: t0.Add(10 * time.Minute), Step: time.Minute}
		if instant {
			p.Step = 0
		}
		_, err := e.Exec(context.Background(), p)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want %q", q, err, want)
		}
	}
	f(`sum by (level) (count_over_time({app="api"} | json [1m]))`, "pipeline error: 'JSONParserErr'", false)
	f(`{app="api"}`, "log queries are not supported as an instant query type", true)
	f(`1 > 2`, "comparisons between scalars must use BOOL modifier", true)
	_, err := e.Exec(context.Background(), Params{Query: `count_over_time({app="api"}[1m])`, Start: t0, End: t0.Add(time.Minute)})
	if err != nil {
		t.Errorf("instant query: %v", err)
	}
	small := NewEngine(m, Options{MaxSeries: 2})
	_, err = small.Exec(context.Background(), Params{Query: `count_over_time({app="api"} | logfmt [10m])`, Start: t0.Add(10 * time.Minute), End: t0.Add(10 * time.Minute)})
	if err == nil || !strings.Contains(err.Error(), "maximum number of series (2)") {
		t.Errorf("series limit: %v", err)
	}
	_ = math.NaN
}

// TestSumOfRateGroupsLinesDirectly: sum by (level) over a parser that yields a
// label set per line (msg, latency) answers within a points budget that a
// series per line would exceed, with the same numbers as grouping afterwards.
func TestSumOfRateGroupsLinesDirectly(t *testing.T) {
	m := fixture()
	p := Params{Query: `sum by (level) (count_over_time({app="api"} | logfmt [10m]))`, Start: t0.Add(10 * time.Minute), End: t0.Add(10 * time.Minute), Step: time.Minute}
	// 60 distinct label sets × 1 step would exceed 10 points; 2 levels do not.
	res, err := NewEngine(m, Options{MaxPoints: 10}).Exec(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, s := range res.Matrix {
		got[s.Metric.Get("level")] = s.Floats[0].F
	}
	// (t0, t0+10m] holds lines 1..59: errors are every fourth, from line 4.
	if got["error"] != 14 || got["info"] != 45 || len(got) != 2 {
		t.Fatalf("%v", got)
	}
	// Not linear: max by needs every series, so the budget still applies.
	p.Query = `max by (level) (count_over_time({app="api"} | logfmt [10m]))`
	if _, err := NewEngine(m, Options{MaxPoints: 10}).Exec(context.Background(), p); err == nil || !strings.Contains(err.Error(), "maximum number of series") {
		t.Fatalf("max by: %v", err)
	}
}
