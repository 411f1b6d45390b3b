package traceql

import (
	"reflect"
	"testing"
	"time"
)

func TestHints(t *testing.T) {
	cases := []struct {
		q    string
		want Hints
	}{
		{`{}`, Hints{}},
		{`{ resource.service.name = "api" && name = "GET" && status = error && duration > 100ms }`, Hints{
			ServiceNames: []string{"api"}, SpanNames: []string{"GET"}, RequireError: true, MinSpanDuration: 100 * time.Millisecond,
			AttrValues: []KeyValue{{ScopedKey{"resource", "service.name"}, "api"}},
		}},
		{`{ name = "a" || name = "b" }`, Hints{SpanNames: []string{"a", "b"}}},
		{`{ name =~ "a|bc" }`, Hints{SpanNames: []string{"a", "bc"}}},
		{`{ name =~ "a.*" }`, Hints{}},
		{`{ name = "a" || duration > 1s }`, Hints{}},
		{`{ duration > 1s || duration > 2s }`, Hints{MinSpanDuration: time.Second}},
		{`{ 1s < duration }`, Hints{MinSpanDuration: time.Second}},
		{`{ duration < 1s }`, Hints{}},
		{`{ traceDuration >= 3s }`, Hints{MinTraceDuration: 3 * time.Second}},
		{`{ rootServiceName = "x" }`, Hints{ServiceNames: []string{"x"}}},
		{`{ status = error || status = ok }`, Hints{}},
		{`{ !(status = error) }`, Hints{}},
		{`{ span.http.method = "GET" }`, Hints{AttrValues: []KeyValue{{ScopedKey{"span", "http.method"}, "GET"}}}},
		{`{ .http.status_code >= 500 }`, Hints{AttrKeys: []ScopedKey{{"", "http.status_code"}},
			AttrCmps: []AttrCmp{{ScopedKey: ScopedKey{"", "http.status_code"}, Op: ">=", lit: intValue(500)}}}},
		{`{ span.http.status_code = 500 && .ok = true }`, Hints{
			AttrKeys: []ScopedKey{{"span", "http.status_code"}, {"", "ok"}},
			AttrCmps: []AttrCmp{{ScopedKey: ScopedKey{"span", "http.status_code"}, Op: "=", lit: intValue(500)},
				{ScopedKey: ScopedKey{"", "ok"}, Op: "=", lit: trueValue}}}},
		{`{ .foo != nil }`, Hints{AttrKeys: []ScopedKey{{"", "foo"}}}},
		{`{ .foo = nil }`, Hints{}},
		{`{ name = "a" } && { name = "b" }`, Hints{SpanNames: []string{"a"}}},
		{`{ name = "a" } || { name = "b" }`, Hints{SpanNames: []string{"a", "b"}}},
		{`{ name = "a" } > { name = "b" }`, Hints{SpanNames: []string{"a"}}},
		{`{ name = "a" } !> { status = error }`, Hints{RequireError: true}},
		{`{ status = error } | count() > 2`, Hints{RequireError: true}},
		{`{ } | by(name) | { status = error }`, Hints{RequireError: true}},
		{`{ status = error } | rate() by(name)`, Hints{RequireError: true}},
		{`({ status = error } | rate()) / ({ } | rate())`, Hints{}},
		{`({ status = error } | rate()) * ({ status = error && name = "x" } | rate())`, Hints{RequireError: true}},
	}
	for _, tc := range cases {
		q, err := Parse(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		if got := q.Hints(); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s:\n got %+v\nwant %+v", tc.q, got, tc.want)
		}
	}
}

// TestAttrCmpHolds checks comparisons against stored values as TraceQL
// evaluates them: numbers across int and float, strings by order, anchored
// regexes, and no match across unrelated types.
func TestAttrCmpHolds(t *testing.T) {
	cases := []struct {
		q         string
		typ, text string
		want      bool
	}{
		{`{ .c = 500 }`, "int", "500", true},
		{`{ .c = 500 }`, "int", "200", false},
		{`{ .c = 500 }`, "float", "500", true},
		{`{ .c = 500 }`, "string", "500", false},
		{`{ .c >= 500 }`, "int", "503", true},
		{`{ .c >= 500 }`, "int", "499", false},
		{`{ .c < 1.5 }`, "int", "1", true},
		{`{ .c != 500 }`, "int", "200", true},
		{`{ .c != 500 }`, "int", "500", false},
		{`{ .s > "m" }`, "string", "n", true},
		{`{ .s =~ "GET|POST" }`, "string", "POST", true},
		{`{ .s =~ "GET|POST" }`, "string", "XPOST", false},
		{`{ .b = true }`, "bool", "true", true},
		{`{ .b = true }`, "bool", "false", false},
		{`{ .c = 500 }`, "int", "garbage", true}, // unreadable: cannot rule out
	}
	for _, tc := range cases {
		q, err := Parse(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		h := q.Hints()
		if len(h.AttrCmps) != 1 {
			t.Fatalf("%s: %d comparisons in hints", tc.q, len(h.AttrCmps))
		}
		if got := h.AttrCmps[0].Holds(tc.typ, tc.text); got != tc.want {
			t.Errorf("%s on %s %q: got %v", tc.q, tc.typ, tc.text, got)
		}
	}
}

// TestHintsNeverSkipMatches checks the one property the store relies on: a
// trace that matches is never ruled out by its own exact summary, nor by a
// block summary that includes it.
func TestHintsNeverSkipMatches(t *testing.T) {
	traces := fixtureTraces()
	block := Summarize(traces["A"]).Merge(Summarize(traces["B"])).Merge(Summarize(traces["C"]))
	pruned := 0
	for _, tc := range evalCases {
		q, err := Parse(tc.q)
		if err != nil {
			t.Fatal(err)
		}
		h := q.Hints()
		for name, td := range traces {
			s := Summarize(td)
			matches := len(q.EvalTrace(td)) > 0
			if matches && (!h.MayMatch(s) || !h.MayMatch(block)) {
				t.Errorf("%s: hints %+v skip matching trace %s", tc.q, h, name)
			}
			if !h.MayMatch(s) {
				pruned++
			}
		}
	}
	// The hints must also be useful: selective queries rule traces out.
	if pruned < 60 {
		t.Errorf("hints pruned only %d trace evaluations", pruned)
	}
}

func TestMayMatchUnknownSummary(t *testing.T) {
	q, _ := Parse(`{ resource.service.name = "x" && status = error && duration > 1s && span.a = "b" }`)
	if !q.Hints().MayMatch(TraceSummary{}) {
		t.Fatal("an empty (unknown) summary must never be skipped")
	}
	s := TraceSummary{ServiceNames: map[string]struct{}{"y": {}}}
	if q.Hints().MayMatch(s) {
		t.Fatal("a summary without service x must be skipped")
	}
	s = TraceSummary{HasAttrValue: func(k ScopedKey, v string) bool { return !(k.Key == "a" && v == "b") }}
	if q.Hints().MayMatch(s) {
		t.Fatal("HasAttrValue false must skip")
	}
}
