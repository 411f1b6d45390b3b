package traceql

import (
	"fmt"
	"iter"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

func fixtureSeq() iter.Seq[ptrace.Traces] {
	f := fixtureTraces()
	return slices.Values([]ptrace.Traces{f["A"], f["B"], f["C"]})
}

// seriesText renders a result compactly: one line per series,
// "labels: v@offset v@offset", offsets in seconds from t0.
func seriesText(res *MetricsResult) string {
	var lines []string
	for _, s := range res.Series {
		var ls []string
		for _, l := range s.Labels {
			ls = append(ls, l.Key+"="+l.Value.AsString())
		}
		var vs []string
		for _, p := range s.Samples {
			vs = append(vs, fmt.Sprintf("%s@%d", trimFloat(p.Value), (p.TimestampMs-t0.UnixMilli())/1000))
		}
		lines = append(lines, "{"+strings.Join(ls, ",")+"}: "+strings.Join(vs, " "))
	}
	return strings.Join(lines, "\n")
}

func trimFloat(f float64) string {
	return strings.TrimSuffix(fmt.Sprintf("%.10g", math.Round(f*1e12)/1e12), ".0")
}

func TestEvalMetrics(t *testing.T) {
	// Range [t0, t0+30s], step 10s: Tempo aligns and adds a leading slot, so
	// slots end at t0, +10s, +20s, +30s. Trace A's root starts exactly at t0
	// (slot 0), its other spans at t0+5..45ms (slot 1); B's consume starts at
	// t0+10s (slot 1), process at t0+10.005s (slot 2); C at t0+20s (slot 2).
	rng := MetricsRequest{Start: t0, End: t0.Add(30 * time.Second), Step: 10 * time.Second}
	cases := []struct {
		q    string
		want string
	}{
		{`{} | count_over_time()`, `{__name__=count_over_time}: 1@0 5@10 2@20 0@30`},
		{`{} | rate()`, `{__name__=rate}: 0.1@0 0.5@10 0.2@20 0@30`},
		{`{ status = error } | rate()`, `{__name__=rate}: 0@0 0.1@10 0@20 0@30`},
		{`{ name = "nope" } | rate()`, ``},
		{`{} | count_over_time() by(resource.service.name)`, strings.Join([]string{
			`{resource.service.name=api}: 0@0 2@10 1@20 0@30`,
			`{resource.service.name=db}: 0@0 2@10 0@20 0@30`,
			`{resource.service.name=frontend}: 1@0 1@10 1@20 0@30`,
		}, "\n")},
		{`{ span.http.method != nil } | count_over_time() by(span.http.method, resource.service.name)`, strings.Join([]string{
			`{span.http.method=GET,resource.service.name=api}: 0@0 0@10 1@20 0@30`,
			`{span.http.method=GET,resource.service.name=frontend}: 1@0 0@10 0@20 0@30`,
			`{span.http.method=POST,resource.service.name=api}: 0@0 1@10 0@20 0@30`,
		}, "\n")},
		{`{ resource.service.name = "db" } | count_over_time() by(span.db.system)`, strings.Join([]string{
			`{span.db.system=nil}: 0@0 1@10 0@20 0@30`,
			`{span.db.system=postgresql}: 0@0 1@10 0@20 0@30`,
		}, "\n")},
		{`{} | max_over_time(duration)`, `{__name__=max_over_time}: 0.1@0 0.08@10 1@20`},
		{`{} | min_over_time(duration)`, `{__name__=min_over_time}: 0.1@0 0.005@10 0.001@20`},
		{`{} | sum_over_time(duration)`, `{__name__=sum_over_time}: 0.1@0 0.205@10 1.001@20`},
		{`{} | avg_over_time(duration)`, `{__name__=avg_over_time}: 0.1@0 0.041@10 0.5005@20`},
		{`{} | sum_over_time(span.db.rows)`, `{__name__=sum_over_time}: 42@10`},
		{`{} | avg_over_time(span.ratio) by(resource.service.name)`, `{resource.service.name=db}: 0.5@10`},
		// log2 buckets: 100ms -> 2^27ns, 80/70ms -> 2^27, 30/20ms -> 2^25, 5ms -> 2^23, 1s -> 2^30, 1ms -> 2^20.
		{`{} | quantile_over_time(duration, .5, .99)`, strings.Join([]string{
			`{p=0.5}: 0.134217728@0 0.033554432@10 0.001048576@20 0@30`,
			`{p=0.99}: 0.134217728@0 0.134217728@10 1.073741824@20 0@30`,
		}, "\n")},
		// p30 of slot 1 falls inside the 2^25 bucket: exponential interpolation gives 2^24ns.
		{`{ resource.service.name = "db" || name = "call api" || name = "handle" || name = "consume" } | quantile_over_time(duration, .3)`,
			`{p=0.3}: 0@0 0.016777216@10 0@20 0@30`},
		{`{ kind = server } | quantile_over_time(duration, .9) by(resource.service.name)`, strings.Join([]string{
			`{resource.service.name=api,p=0.9}: 0@0 0.134217728@10 0@20 0@30`,
			`{resource.service.name=frontend,p=0.9}: 0.134217728@0 0@10 0.001048576@20 0@30`,
		}, "\n")},
		{`{ resource.service.name = "db" || kind = server } | histogram_over_time(duration)`, strings.Join([]string{
			`{__bucket=0.001048576}: 0@0 0@10 1@20 0@30`,
			`{__bucket=0.033554432}: 0@0 2@10 0@20 0@30`,
			`{__bucket=0.134217728}: 1@0 1@10 0@20 0@30`,
		}, "\n")},
		// second stages
		{`{} | count_over_time() by(resource.service.name) | topk(1)`, strings.Join([]string{
			`{resource.service.name=api}: 2@10 1@20 0@30`,
			`{resource.service.name=frontend}: 1@0`,
		}, "\n")},
		{`{} | count_over_time() by(resource.service.name) | bottomk(1)`, strings.Join([]string{
			`{resource.service.name=api}: 0@0 0@30`,
			`{resource.service.name=db}: 0@20`,
			`{resource.service.name=frontend}: 1@10`,
		}, "\n")},
		{`{} | count_over_time() by(resource.service.name) > 1`, strings.Join([]string{
			`{resource.service.name=api}: 2@10`,
			`{resource.service.name=db}: 2@10`,
		}, "\n")},
		{`{} | rate() >= 0.2`, `{__name__=rate}: 0.5@10 0.2@20`},
		{`{} | max_over_time(duration) < 90ms`, `{__name__=max_over_time}: 0.08@10`},
		{`{} | count_over_time() by(resource.service.name) > 0 | topk(1)`, strings.Join([]string{
			`{resource.service.name=api}: 2@10 1@20`,
			`{resource.service.name=frontend}: 1@0`,
		}, "\n")},
		{`{ resource.service.name = "api" } | compare({ status = error })`, strings.Join([]string{
			`{__meta_type=baseline,kind=consumer}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=baseline,kind=internal}: 0@0 0@10 1@20 0@30`,
			`{__meta_type=baseline,name=consume}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=baseline,name=process}: 0@0 0@10 1@20 0@30`,
			`{__meta_type=baseline,resource.service.name=api}: 0@0 1@10 1@20 0@30`,
			`{__meta_type=baseline,rootName=consume}: 0@0 1@10 1@20 0@30`,
			`{__meta_type=baseline,rootServiceName=api}: 0@0 1@10 1@20 0@30`,
			`{__meta_type=baseline,span."my attr"=1}: 0@0 0@10 1@20 0@30`,
			`{__meta_type=baseline,span.http.method=GET}: 0@0 0@10 1@20 0@30`,
			`{__meta_type=baseline,span.quote=say "hi"}: 0@0 0@10 1@20 0@30`,
			`{__meta_type=baseline,status=ok}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=baseline,status=unset}: 0@0 0@10 1@20 0@30`,
			`{__meta_type=baseline_total,kind=nil}: 0@0 1@10 1@20 0@30`,
			`{__meta_type=baseline_total,name=nil}: 0@0 1@10 1@20 0@30`,
			`{__meta_type=baseline_total,resource.service.name=nil}: 0@0 1@10 1@20 0@30`,
			`{__meta_type=baseline_total,rootName=nil}: 0@0 1@10 1@20 0@30`,
			`{__meta_type=baseline_total,rootServiceName=nil}: 0@0 1@10 1@20 0@30`,
			`{__meta_type=baseline_total,span."my attr"=nil}: 0@0 0@10 1@20 0@30`,
			`{__meta_type=baseline_total,span.http.method=nil}: 0@0 0@10 1@20 0@30`,
			`{__meta_type=baseline_total,span.quote=nil}: 0@0 0@10 1@20 0@30`,
			`{__meta_type=baseline_total,status=nil}: 0@0 1@10 1@20 0@30`,
			`{__meta_type=selection,kind=server}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection,name=handle}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection,resource.service.name=api}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection,rootName=GET /}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection,rootServiceName=frontend}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection,span.http.method=POST}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection,status=error}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection,statusMessage=boom}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection_total,kind=nil}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection_total,name=nil}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection_total,resource.service.name=nil}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection_total,rootName=nil}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection_total,rootServiceName=nil}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection_total,span.http.method=nil}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection_total,status=nil}: 0@0 1@10 0@20 0@30`,
			`{__meta_type=selection_total,statusMessage=nil}: 0@0 1@10 0@20 0@30`,
		}, "\n")},
	}
	for _, tc := range cases {
		t.Run(tc.q, func(t *testing.T) {
			q, err := Parse(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			res, err := q.EvalMetrics(rng, fixtureSeq())
			if err != nil {
				t.Fatal(err)
			}
			if got := seriesText(res); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}

func TestEvalMetricsInstant(t *testing.T) {
	// Step = End-Start is an instant query: one slot [Start, End] stamped at End.
	req := MetricsRequest{Start: t0, End: t0.Add(30 * time.Second), Step: 30 * time.Second}
	for q, want := range map[string]string{
		`{} | count_over_time()`:                           `{__name__=count_over_time}: 8@30`,
		`{} | rate()`:                                      `{__name__=rate}: 0.2666666667@30`,
		`{} | rate() by(kind)`:                             "{kind=client}: 0.1@30\n{kind=consumer}: 0.03333333333@30\n{kind=internal}: 0.03333333333@30\n{kind=server}: 0.1@30",
		`{ duration > 50ms } | max_over_time(duration)`:    `{__name__=max_over_time}: 1@30`,
		`{} | quantile_over_time(duration, 1) by(kind)`:    "{kind=client,p=1}: 0.134217728@30\n{kind=consumer,p=1}: 0.008388608@30\n{kind=internal,p=1}: 1.073741824@30\n{kind=server,p=1}: 0.134217728@30",
		`{ resource.service.name = "db" } | rate() by(.x)`: `{.x=nil}: 0.06666666667@30`,
	} {
		parsed, err := Parse(q)
		if err != nil {
			t.Fatal(err)
		}
		res, err := parsed.EvalMetrics(req, fixtureSeq())
		if err != nil {
			t.Fatal(err)
		}
		if got := seriesText(res); got != want {
			t.Errorf("%s:\ngot:\n%s\nwant:\n%s", q, got, want)
		}
	}
}

func TestEvalMetricsExemplars(t *testing.T) {
	q, err := Parse(`{} | count_over_time()`)
	if err != nil {
		t.Fatal(err)
	}
	req := MetricsRequest{Start: t0, End: t0.Add(30 * time.Second), Step: 10 * time.Second, Exemplars: 2}
	res, err := q.EvalMetrics(req, fixtureSeq())
	if err != nil {
		t.Fatal(err)
	}
	// Two exemplar buckets over four slots: the first span of slots 0-1 (A's
	// root) and of slots 2-3 (B's process); placeholder values take the
	// sample value of their slot.
	want := []Exemplar{
		{TraceID: strings.Repeat("0a", 16), SpanID: strings.Repeat("01", 8), Value: 1, TimestampMs: t0.UnixMilli()},
		{TraceID: strings.Repeat("0b", 16), SpanID: strings.Repeat("22", 8), Value: 2, TimestampMs: t0.Add(10005 * time.Millisecond).UnixMilli()},
	}
	if got := res.Series[0].Exemplars; !reflect.DeepEqual(got, want) {
		t.Fatalf("exemplars = %+v, want %+v", got, want)
	}

	q, _ = Parse(`{} | max_over_time(duration)`)
	res, err = q.EvalMetrics(req, fixtureSeq())
	if err != nil {
		t.Fatal(err)
	}
	if ex := res.Series[0].Exemplars; len(ex) != 2 || ex[0].Value != 0.1 || ex[1].Value != 1 {
		t.Fatalf("max_over_time exemplars carry the span's own value in seconds, got %+v", ex)
	}
}

func TestEvalMetricsErrors(t *testing.T) {
	q, _ := Parse(`{}`)
	if _, err := q.EvalMetrics(MetricsRequest{Start: t0, End: t0.Add(time.Hour)}, fixtureSeq()); err == nil {
		t.Error("EvalMetrics on a search query must fail")
	}
	q, _ = Parse(`{} | rate()`)
	if _, err := q.EvalMetrics(MetricsRequest{Start: t0, End: t0}, fixtureSeq()); err == nil {
		t.Error("an empty range must fail")
	}
	// The default step for one hour is 15s: 240 slots plus the leading one.
	res, err := q.EvalMetrics(MetricsRequest{Start: t0, End: t0.Add(time.Hour)}, fixtureSeq())
	if err != nil {
		t.Fatal(err)
	}
	if n := len(res.Series[0].Samples); n != 241 {
		t.Errorf("default step gave %d samples, want 241", n)
	}
}

func TestEvalMetricsMath(t *testing.T) {
	rng := MetricsRequest{Start: t0, End: t0.Add(30 * time.Second), Step: 10 * time.Second}
	cases := []struct{ q, want string }{
		// error ratio; 0/0 in the last slot drops the sample
		{`({ status = error } | count_over_time()) / ({} | count_over_time())`,
			`{__name__=(count_over_time / count_over_time)}: 0@0 0.2@10 0@20`},
		// an ungrouped side applies to every series of the other side
		{`({} | count_over_time() by(resource.service.name)) / ({} | count_over_time())`, strings.Join([]string{
			`{resource.service.name=api}: 0@0 0.4@10 0.5@20`,
			`{resource.service.name=db}: 0@0 0.4@10 0@20`,
			`{resource.service.name=frontend}: 1@0 0.2@10 0.5@20`,
		}, "\n")},
		{`({} | rate()) * 100`, `{__name__=rate}: 10@0 50@10 20@20 0@30`},
		{`100 - ({} | count_over_time())`, `{__name__=count_over_time}: 99@0 95@10 98@20 100@30`},
		{`(2 + 3) * ({} | count_over_time())`, `{__name__=count_over_time}: 5@0 25@10 10@20 0@30`},
		{`({} | count_over_time()) > 1`, `{__name__=count_over_time}: 5@10 2@20`},
		{`({} | count_over_time() > 1) * 2`, `{__name__=count_over_time}: 10@10 4@20`},
		{`({} | count_over_time() by(resource.service.name)) + ({ kind = server } | count_over_time() by(resource.service.name)) | topk(1)`, strings.Join([]string{
			`{resource.service.name=api}: 3@10 0@30`,
			`{resource.service.name=frontend}: 2@0 2@20`,
		}, "\n")},
		{`({} | count_over_time() by(kind)) + ({} | count_over_time() by(resource.service.name))`, ``},
	}
	for _, tc := range cases {
		t.Run(tc.q, func(t *testing.T) {
			q, err := Parse(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			if !q.IsMetrics() || q.EvalTrace(fixtureTraces()["A"]) != nil {
				t.Fatal("metrics arithmetic must be a metrics query")
			}
			again, err := Parse(q.String())
			if err != nil || again.String() != q.String() {
				t.Fatalf("round trip %q: %v", q.String(), err)
			}
			res, err := q.EvalMetrics(rng, fixtureSeq())
			if err != nil {
				t.Fatal(err)
			}
			if got := seriesText(res); got != tc.want {
				t.Errorf("got:\n%s\nwant:\n%s", got, tc.want)
			}
		})
	}
}
