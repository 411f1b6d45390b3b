package traceql

import (
	"fmt"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// result is trace name -> spansets -> span names, for compact expectations.
type result map[string][][]string

func evalAll(t *testing.T, query string) result {
	t.Helper()
	q, err := Parse(query)
	if err != nil {
		t.Fatalf("Parse(%q): %v", query, err)
	}
	out := result{}
	for name, td := range fixtureTraces() {
		for _, ss := range q.EvalTrace(td) {
			var names []string
			for _, s := range ss.Spans {
				names = append(names, s.Span.Name())
			}
			out[name] = append(out[name], names)
		}
	}
	return out
}

var (
	allA = []string{"GET /", "call api", "handle", "SELECT", "INSERT"}
	allB = []string{"consume", "process"}
	allC = []string{"GET /health"}
)

func one(a ...string) [][]string { return [][]string{a} }

var hexB = strings.Repeat("0b", 16)

type evalCase struct {
	q    string
	want result
}

// evalCases cover every operator and pipeline stage over the fixture traces.
var evalCases = []evalCase{
	// empty filter and intrinsics
	{`{}`, result{"A": one(allA...), "B": one(allB...), "C": one(allC...)}},
	{`{ true }`, result{"A": one(allA...), "B": one(allB...), "C": one(allC...)}},
	{`{ false }`, result{}},
	{`{ name = "SELECT" }`, result{"A": one("SELECT")}},
	{`{ span:name = "SELECT" }`, result{"A": one("SELECT")}},
	{"{ name = `SELECT` }", result{"A": one("SELECT")}},
	{`{ name != "SELECT" && resource.service.name = "db" }`, result{"A": one("INSERT")}},
	{`{ name > "a" }`, result{"A": one("call api", "handle"), "B": one(allB...)}},
	{`{ status = error }`, result{"A": one("handle")}},
	{`{ span:status = ok }`, result{"B": one("consume")}},
	{`{ status = unset }`, result{"A": one("GET /", "call api", "SELECT", "INSERT"), "B": one("process"), "C": one(allC...)}},
	{`{ status != unset }`, result{"A": one("handle"), "B": one("consume")}},
	{`{ statusMessage = "boom" }`, result{"A": one("handle")}},
	{`{ span:statusMessage =~ "bo.*" }`, result{"A": one("handle")}},
	{`{ kind = server }`, result{"A": one("GET /", "handle"), "C": one(allC...)}},
	{`{ span:kind = consumer }`, result{"B": one("consume")}},
	{`{ kind = internal }`, result{"B": one("process")}},
	{`{ kind = producer || kind = unspecified }`, result{}},
	{`{ kind != client }`, result{"A": one("GET /", "handle"), "B": one(allB...), "C": one(allC...)}},
	// durations and comparison operators
	{`{ duration > 50ms }`, result{"A": one("GET /", "call api", "handle"), "B": one("process")}},
	{`{ span:duration >= 70ms }`, result{"A": one("GET /", "call api", "handle"), "B": one("process")}},
	{`{ duration < 10ms }`, result{"B": one("consume"), "C": one(allC...)}},
	{`{ duration <= 5ms }`, result{"B": one("consume"), "C": one(allC...)}},
	{`{ duration = 20ms }`, result{"A": one("SELECT")}},
	{`{ duration != 20ms }`, result{"A": one("GET /", "call api", "handle", "INSERT"), "B": one(allB...), "C": one(allC...)}},
	{`{ duration > 0.5s }`, result{"B": one("process")}},
	{`{ duration > 500000us }`, result{"B": one("process")}},
	{`{ duration > 500000µs }`, result{"B": one("process")}},
	{`{ duration > 500000000ns }`, result{"B": one("process")}},
	{`{ duration > 1h30m }`, result{}},
	{`{ duration < 1s5ms && duration > 999ms }`, result{"B": one("process")}},
	{`{ duration > 1000000 }`, result{"A": one("GET /", "call api", "handle", "SELECT", "INSERT"), "B": one(allB...)}}, // ints are nanoseconds
	// trace-level intrinsics
	{`{ rootName = "GET /" }`, result{"A": one(allA...)}},
	{`{ trace:rootName = "consume" }`, result{"B": one(allB...)}},
	{`{ rootServiceName = "api" }`, result{"B": one(allB...)}},
	{`{ trace:rootService = "frontend" && name = "SELECT" }`, result{"A": one("SELECT")}},
	{`{ traceDuration > 1s }`, result{"B": one(allB...)}},
	{`{ trace:duration < 50ms }`, result{"C": one(allC...)}},
	{`{ trace:duration = 100ms && kind = server }`, result{"A": one("GET /", "handle")}},
	{`{ trace:id = "` + hexB + `" && name = "process" }`, result{"B": one("process")}},
	{`{ span:id = "0404040404040404" }`, result{"A": one("SELECT")}},
	{`{ span:parentID = "0303030303030303" }`, result{"A": one("SELECT", "INSERT")}},
	{`{ span:childCount = 2 }`, result{"A": one("handle")}},
	// nested set numbers: A is GET /(1,10) > call api(2,9) > handle(3,8) > SELECT(4,5), INSERT(6,7)
	{`{ nestedSetParent < 0 }`, result{"A": one("GET /"), "B": one("consume"), "C": one(allC...)}},
	{`{ nestedSetParent < 0 && true } | select(nestedSetLeft, nestedSetRight)`, result{"A": one("GET /"), "B": one("consume"), "C": one(allC...)}},
	{`{ nestedSetLeft = 6 && nestedSetRight = 7 && nestedSetParent = 3 }`, result{"A": one("INSERT")}},
	{`{ nestedSetRight - nestedSetLeft = 9 }`, result{"A": one("GET /")}},
	// attributes: scoped, unscoped, quoted, typed
	{`{ resource.service.name = "db" }`, result{"A": one("SELECT", "INSERT")}},
	{`{ .service.name = "db" }`, result{"A": one("SELECT", "INSERT")}},
	{`{ .deployment.env = "prod" }`, result{"A": one("GET /", "call api")}},
	{`{ span.deployment.env = "prod" }`, result{}},
	{`{ span."http.method" = "GET" }`, result{"A": one("GET /"), "B": one("process")}},
	{`{ span."my attr" = 1 }`, result{"B": one("process")}},
	{`{ .quote = "say \"hi\"" }`, result{"B": one("process")}},
	{`{ span.http.method =~ "G.*" }`, result{"A": one("GET /"), "B": one("process")}},
	{`{ span.http.method =~ "E" }`, result{}}, // fully anchored
	{`{ span.http.method =~ "GET|POST" }`, result{"A": one("GET /", "handle"), "B": one("process")}},
	{`{ span.http.method !~ "G.*" }`, result{"A": one("handle")}},
	{`{ span.http.status_code = 200 }`, result{"A": one("GET /")}},
	{`{ span.http.status_code = "200" }`, result{}}, // type mismatch is false, not an error
	{`{ span.http.status_code >= 200 && span.http.status_code < 300 }`, result{"A": one("GET /")}},
	{`{ span.db.rows > 40 }`, result{"A": one("SELECT")}},
	{`{ span.db.rows = 42.0 }`, result{"A": one("SELECT")}},
	{`{ span.ratio < 1 }`, result{"A": one("SELECT")}},
	{`{ span.ratio = 0.5 }`, result{"A": one("SELECT")}},
	{`{ span.cached = true }`, result{"A": one("SELECT")}},
	{`{ span.cached = false }`, result{}},
	{`{ span.cached != true }`, result{}}, // missing attributes never match
	{`{ .peer.service != nil }`, result{"A": one("call api")}},
	{`{ span.peer.service = nil && resource.service.name = "frontend" }`, result{"A": one("GET /"), "C": one(allC...)}},
	{`{ span.tags = "a" }`, result{"A": one("handle")}},
	{`{ span.tags =~ "b" }`, result{"A": one("handle")}},
	{`{ span.tags != "c" }`, result{"A": one("handle")}},
	{`{ span.tags != "a" }`, result{}},
	// events, links, instrumentation
	{`{ event:name = "exception" }`, result{"A": one("handle")}},
	{`{ event.exception.message =~ "nil.*" }`, result{"A": one("handle")}},
	{`{ event.exception.message != nil }`, result{"A": one("handle")}},
	{`{ event:timeSinceStart = 5ms }`, result{"A": one("handle")}},
	{`{ link.link.kind = "follows" }`, result{"A": one("INSERT")}},
	{`{ link:traceID = "` + hexB + `" }`, result{"A": one("INSERT")}},
	{`{ link:spanID = "2121212121212121" }`, result{"A": one("INSERT")}},
	{`{ instrumentation:name = "kafka-lib" }`, result{"B": one("consume")}},
	{`{ instrumentation:version = "1.2.3" }`, result{"B": one("consume")}},
	{`{ instrumentation.lib.lang = "go" }`, result{"B": one("consume")}},
	// arithmetic and boolean logic
	{`{ duration * 2 > 150ms }`, result{"A": one("GET /", "call api"), "B": one("process")}},
	{`{ span.db.rows + 8 = 50 }`, result{"A": one("SELECT")}},
	{`{ span.db.rows % 5 = 2 }`, result{"A": one("SELECT")}},
	{`{ span.db.rows / 4 = 10 }`, result{"A": one("SELECT")}},
	{`{ span.db.rows - 2 * 20 = 2 }`, result{"A": one("SELECT")}},
	{`{ (span.db.rows - 2) * 2 = 80 }`, result{"A": one("SELECT")}},
	{`{ 2 ^ 3 ^ 2 = 512 && name = "SELECT" }`, result{"A": one("SELECT")}},
	{`{ -span.db.rows = -42 }`, result{"A": one("SELECT")}},
	{`{ span.ratio * 4 = 2.0 }`, result{"A": one("SELECT")}},
	{`{ !(name = "SELECT") && resource.service.name = "db" }`, result{"A": one("INSERT")}},
	{`{ name = "SELECT" || name = "INSERT" }`, result{"A": one("SELECT", "INSERT")}},
	// && and || share a precedence level and associate left, like Tempo.
	{`{ name = "consume" || name = "SELECT" && kind = client }`, result{"A": one("SELECT")}},
	{`{ name = "consume" || (name = "SELECT" && kind = client) }`, result{"A": one("SELECT"), "B": one("consume")}},
	// spanset operators
	{`{ name = "SELECT" } && { name = "handle" }`, result{"A": one("handle", "SELECT")}},
	{`{ name = "SELECT" } && { name = "consume" }`, result{}},
	{`{ name = "SELECT" } || { name = "consume" }`, result{"A": one("SELECT"), "B": one("consume")}},
	{`{ name = "handle" } > { kind = client }`, result{"A": one("SELECT", "INSERT")}},
	{`{ resource.service.name = "frontend" } > { resource.service.name = "api" }`, result{"A": one("handle")}},
	{`{ kind = client } < { kind = server }`, result{"A": one("GET /", "handle")}},
	{`{ name = "GET /" } >> { resource.service.name = "db" }`, result{"A": one("SELECT", "INSERT")}},
	{`{ resource.service.name = "db" } << { kind = server }`, result{"A": one("GET /", "handle")}},
	{`{ name = "SELECT" } ~ { }`, result{"A": one("INSERT")}},
	{`{ resource.service.name = "db" } ~ { resource.service.name = "db" }`, result{"A": one("SELECT", "INSERT")}},
	{`{ name = "handle" } !> { kind = client }`, result{"A": one("call api")}},
	{`{ name = "GET /" } !>> { }`, result{"A": one("GET /"), "B": one(allB...), "C": one(allC...)}},
	{`{ kind = client } !< { }`, result{"A": one("call api", "SELECT", "INSERT"), "B": one(allB...), "C": one(allC...)}},
	{`{ name = "SELECT" } !<< { }`, result{"A": one("SELECT", "INSERT"), "B": one(allB...), "C": one(allC...)}},
	{`{ name = "SELECT" } !~ { }`, result{"A": one("GET /", "call api", "handle", "SELECT"), "B": one(allB...), "C": one(allC...)}},
	{`{ name = "handle" } &> { kind = client }`, result{"A": one("handle", "SELECT", "INSERT")}},
	{`{ kind = client } &< { kind = server }`, result{"A": one(allA...)}},
	{`{ name = "GET /" } &>> { resource.service.name = "db" }`, result{"A": one("GET /", "SELECT", "INSERT")}},
	{`{ resource.service.name = "db" } &<< { kind = server }`, result{"A": one("GET /", "handle", "SELECT", "INSERT")}},
	{`{ name = "SELECT" } &~ { name = "INSERT" }`, result{"A": one("SELECT", "INSERT")}},
	{`{ name = "SELECT" } &~ { name = "consume" }`, result{}},
	{`{ name = "GET /" } > { name = "call api" } > { name = "handle" }`, result{"A": one("handle")}},
	{`{ name = "consume" } > { } || { name = "GET /health" }`, result{"B": one("process"), "C": one(allC...)}},
	{`{ name = "consume" } > ({ } || { name = "GET /health" })`, result{"B": one("process")}},
	// pipelines
	{`{ resource.service.name = "db" } | count() > 1`, result{"A": one("SELECT", "INSERT")}},
	{`{ resource.service.name = "db" } | count() > 2`, result{}},
	{`{ } | count() > 4`, result{"A": one(allA...)}},
	{`{ } | count() = 1`, result{"C": one(allC...)}},
	{`{ } | 2 = count()`, result{"B": one(allB...)}},
	{`{ } | count() * 2 > 8`, result{"A": one(allA...)}},
	{`{ } | avg(duration) > 500ms`, result{"B": one(allB...)}},
	{`{ } | avg(duration) = 60ms`, result{"A": one(allA...)}},
	{`{ } | min(duration) < 2ms`, result{"C": one(allC...)}},
	{`{ } | max(duration) >= 1s`, result{"B": one(allB...)}},
	{`{ } | sum(duration) = 300ms`, result{"A": one(allA...)}},
	{`{ } | sum(span.db.rows) = 42`, result{"A": one(allA...)}},
	{`{ } | avg(span.db.rows) = 42`, result{"A": one(allA...)}},
	{`{ } | by(resource.service.name)`, result{
		"A": {{"GET /", "call api"}, {"handle"}, {"SELECT", "INSERT"}},
		"B": one(allB...), "C": one(allC...)}},
	{`{ } | by(resource.service.name) | count() > 1`, result{
		"A": {{"GET /", "call api"}, {"SELECT", "INSERT"}}, "B": one(allB...)}},
	{`{ } | by(resource.service.name) | coalesce()`, result{"A": one(allA...), "B": one(allB...), "C": one(allC...)}},
	{`{ } | by(kind) | count() = 3`, result{"A": one("call api", "SELECT", "INSERT")}},
	{`{ } | { name = "SELECT" }`, result{"A": one("SELECT")}},
	{`{ } | count() = 2 | { kind = internal }`, result{"B": one("process")}},
	{`({ } | count() > 4) && { name = "SELECT" }`, result{"A": one(allA...)}},
	{`({ resource.service.name = "db" } | count() > 1) && { status = error }`, result{"A": one("handle", "SELECT", "INSERT")}},
	{`({ } | count() > 4) || ({ } | count() = 1)`, result{"A": one(allA...), "C": one(allC...)}},
	{`{ name = "SELECT" } | select(span.db.system)`, result{"A": one("SELECT")}},
	{`{ name = "nope" } | select(span.db.system)`, result{}},
}

func TestEvalTrace(t *testing.T) {
	for _, tc := range evalCases {
		t.Run(tc.q, func(t *testing.T) {
			got := evalAll(t, tc.q)
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("query %s\n got: %v\nwant: %v", tc.q, got, tc.want)
			}
		})
	}
}

func attrMap(attrs []Attribute) map[string]string {
	m := map[string]string{}
	for _, a := range attrs {
		m[a.Key] = fmt.Sprintf("%s:%s", a.Value.Type(), a.Value.AsString())
	}
	return m
}

func TestSelectedAttributes(t *testing.T) {
	cases := []struct {
		q     string
		trace string
		span  string
		want  map[string]string
	}{
		{`{ resource.service.name = "db" && status = unset && name = "SELECT" && duration > 1ms } | select(span.db.rows, span.ratio)`, "A", "SELECT",
			map[string]string{"service.name": "Str:db", "status": "Str:unset", "db.rows": "Int:42", "ratio": "Double:0.5"}},
		{`{ kind = server && span.http.method != nil && span.nope = nil }`, "A", "GET /",
			map[string]string{"kind": "Str:server", "http.method": "Str:GET"}},
		{`{ event:name = "exception" } | select(span.tags, statusMessage)`, "A", "handle",
			map[string]string{"event:name": "Str:exception", "tags": `Slice:["a","b"]`, "statusMessage": "Str:boom"}},
		{`{ nestedSetParent < 0 && kind = server }`, "A", "GET /", map[string]string{"kind": "Str:server"}},
		{`{ nestedSetParent < 0 } | select(nestedSetRight)`, "A", "GET /", map[string]string{"nestedSetRight": "Int:10"}},
		{`{ .service.name = "api" && rootServiceName = "api" } | select(instrumentation:name)`, "B", "consume",
			map[string]string{"service.name": "Str:api", "instrumentation:name": "Str:kafka-lib"}},
	}
	for _, tc := range cases {
		t.Run(tc.q, func(t *testing.T) {
			q, err := Parse(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			res := q.EvalTrace(fixtureTraces()[tc.trace])
			for _, ss := range res {
				for _, s := range ss.Spans {
					if s.Span.Name() != tc.span {
						continue
					}
					if got := attrMap(s.Selected); !reflect.DeepEqual(got, tc.want) {
						t.Errorf("selected = %v, want %v", got, tc.want)
					}
					return
				}
			}
			t.Fatalf("span %s not in result %v", tc.span, res)
		})
	}
}

func TestSpansetAttributes(t *testing.T) {
	cases := []struct {
		q     string
		trace string
		want  []map[string]string // one per spanset, sorted by first span
	}{
		{`{ } | count() > 4`, "A", []map[string]string{{"count()": "Int:5"}}},
		{`{ } | avg(duration) > 1ms`, "A", []map[string]string{{"avg(duration)": "Str:60ms"}}},
		{`{ } | max(span.db.rows) > 1`, "A", []map[string]string{{"max(span.db.rows)": "Int:42"}}},
		{`{ } | avg(span.ratio) > 0`, "A", []map[string]string{{"avg(span.ratio)": "Double:0.5"}}},
		{`{ } | by(resource.service.name) | count() > 1`, "A", []map[string]string{
			{"by(resource.service.name)": "Str:frontend", "count()": "Int:2"},
			{"by(resource.service.name)": "Str:db", "count()": "Int:2"},
		}},
		{`{ } | by(span.http.method)`, "A", []map[string]string{
			{"by(span.http.method)": "Str:GET"},
			{"by(span.http.method)": "Str:nil"},
			{"by(span.http.method)": "Str:POST"},
		}},
		{`{ } | by(resource.service.name) | coalesce()`, "A", []map[string]string{{}}},
	}
	for _, tc := range cases {
		t.Run(tc.q, func(t *testing.T) {
			q, err := Parse(tc.q)
			if err != nil {
				t.Fatal(err)
			}
			res := q.EvalTrace(fixtureTraces()[tc.trace])
			sort.SliceStable(res, func(i, j int) bool {
				return res[i].Spans[0].Span.StartTimestamp() < res[j].Spans[0].Span.StartTimestamp()
			})
			var got []map[string]string
			for _, ss := range res {
				got = append(got, attrMap(ss.Attributes))
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("attributes = %v, want %v", got, tc.want)
			}
		})
	}
}
