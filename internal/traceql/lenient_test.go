package traceql

import (
	"reflect"
	"testing"
)

func TestParseLenient(t *testing.T) {
	cases := []struct {
		q    string
		want result
	}{
		{``, result{"A": one(allA...), "B": one(allB...), "C": one(allC...)}},
		{`{ span.http.status_code = 200 && span.http.method = }`, result{"A": one("GET /")}},
		{`{ resource.service.name = "db" && span.http.target=`, result{"A": one("SELECT", "INSERT")}},
		{`{ resource.service.name = "db"`, result{"A": one("SELECT", "INSERT")}},
		{`{ statusMessage = }`, result{"A": one(allA...), "B": one(allB...), "C": one(allC...)}},
		{`{ name = "SELECT" && }`, result{"A": one("SELECT")}},
		{`{ name = "SELECT" || }`, result{"A": one(allA...), "B": one(allB...), "C": one(allC...)}},
		{`{ (resource.service.name = "db" && .x = ) && kind = client }`, result{"A": one("SELECT", "INSERT")}},
		{`{ name = "GET /" } >> { name = }`, result{"A": one("call api", "handle", "SELECT", "INSERT")}},
		{`{ name = "SELECT" && span.db.system = "postg`, result{"A": one("SELECT")}},
	}
	traces := fixtureTraces()
	for _, tc := range cases {
		q, err := ParseLenient(tc.q)
		if err != nil {
			t.Errorf("ParseLenient(%q): %v", tc.q, err)
			continue
		}
		got := result{}
		for name, td := range traces {
			for _, ss := range q.EvalTrace(td) {
				var names []string
				for _, s := range ss.Spans {
					names = append(names, s.Span.Name())
				}
				got[name] = append(got[name], names)
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q:\n got %v\nwant %v", tc.q, got, tc.want)
		}
		if _, err := Parse(tc.q); err == nil {
			t.Errorf("strict Parse(%q) must still fail", tc.q)
		}
	}
	if _, err := ParseLenient(`{ .a = 1 } | nonsense`); err == nil {
		t.Error("ParseLenient must still reject what is not a half-typed query")
	}
}
