package lokiapi

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/internal/logs"
)

// drilldownLines are an app's logfmt and JSON lines, as Logs Drilldown meets them.
func drilldownLines() []line {
	var ls []line
	for i := range 6 {
		ls = append(ls, line{`{"app":"api"}`, time.Duration(i) * 10 * time.Second,
			fmt.Sprintf("level=info method=GET path=/orders/%d duration=%dms status=200", i, 10+i), ""})
	}
	ls = append(ls,
		line{`{"app":"api"}`, 61 * time.Second, "level=error method=POST path=/pay duration=1.5s status=500 msg=timeout", `{"trace_id":"abc"}`},
		line{`{"app":"web"}`, 62 * time.Second, `{"user":{"id":7},"ok":true,"size":"12KB"}`, ""},
		line{`{"app":"web"}`, 63 * time.Second, `{"user":{"id":8},"ok":false,"size":"3MB"}`, ""},
	)
	return ls
}

func TestDetectedFieldsAndValues(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	f.push(t, "", drilldownLines()...)
	rng := func(q string) url.Values {
		return url.Values{"query": {q}, "start": {f.ns(0)}, "end": {f.ns(time.Hour)}}
	}
	type fieldsResp struct {
		Fields []struct {
			Label       string   `json:"label"`
			Type        string   `json:"type"`
			Cardinality int      `json:"cardinality"`
			Parsers     []string `json:"parsers"`
		} `json:"fields"`
		Limit int `json:"limit"`
	}
	r := decode[fieldsResp](t, f.get(t, "/loki/api/v1/detected_fields", rng(`{app="api"}`)))
	got := map[string]string{}
	for _, fl := range r.Fields {
		got[fl.Label] = fmt.Sprintf("%s/%d/%v", fl.Type, fl.Cardinality, fl.Parsers)
	}
	want := map[string]string{
		"level": "string/2/[logfmt]", "method": "string/2/[logfmt]", "path": "string/7/[logfmt]",
		"duration": "duration/7/[logfmt]", "status": "int/2/[logfmt]", "msg": "string/1/[logfmt]",
		"trace_id": "string/1/[]", "detected_level": "string/2/[]",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("fields\n got %v\nwant %v", got, want)
	}
	r = decode[fieldsResp](t, f.get(t, "/loki/api/v1/detected_fields", rng(`{app="web"}`)))
	got = map[string]string{}
	for _, fl := range r.Fields {
		got[fl.Label] = fmt.Sprintf("%s/%d/%v", fl.Type, fl.Cardinality, fl.Parsers)
	}
	if got["user_id"] != "int/2/[json]" || got["ok"] != "boolean/2/[json]" || got["size"] != "bytes/2/[json]" {
		t.Fatalf("json fields %v", got)
	}

	type valuesResp struct {
		Values []string `json:"values"`
	}
	v := decode[valuesResp](t, f.get(t, "/loki/api/v1/detected_field/method/values", rng(`{app="api"}`)))
	if strings.Join(v.Values, ",") != "GET,POST" {
		t.Fatalf("values %v", v.Values)
	}
}

func TestDetectedLabels(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	f.push(t, "", line{`{"app":"api","pod":"a"}`, 0, "x", ""}, line{`{"app":"api","pod":"b"}`, 0, "y", ""},
		line{`{"app":"web","pod":"c"}`, 0, "z", ""})
	type resp struct {
		DetectedLabels []struct {
			Label       string `json:"label"`
			Cardinality int    `json:"cardinality"`
		} `json:"detectedLabels"`
	}
	r := decode[resp](t, f.get(t, "/loki/api/v1/detected_labels", url.Values{"query": {`{app="api"}`}, "start": {f.ns(-time.Minute)}, "end": {f.ns(time.Hour)}}))
	if fmt.Sprint(r.DetectedLabels) != "[{app 1} {pod 2} {service_name 1}]" {
		t.Fatalf("%v", r.DetectedLabels)
	}
}

func TestPatterns(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	f.push(t, "", drilldownLines()...)
	type resp struct {
		Status string `json:"status"`
		Data   []struct {
			Pattern string     `json:"pattern"`
			Samples [][2]int64 `json:"samples"`
			Level   string     `json:"level"`
		} `json:"data"`
	}
	q := url.Values{"query": {`{app="api"}`}, "start": {f.ns(0)}, "end": {f.ns(2 * time.Minute)}, "step": {"60s"}}
	r := decode[resp](t, f.get(t, "/loki/api/v1/patterns", q))
	if r.Status != "success" || len(r.Data) != 2 {
		t.Fatalf("%+v", r)
	}
	p := r.Data[0]
	if p.Pattern != "level=info method=GET path=<_> duration=<_> status=200" || p.Level != "info" {
		t.Fatalf("pattern %+v", p)
	}
	if fmt.Sprint(p.Samples) != fmt.Sprintf("[[%d 6]]", f.base.Unix()) {
		t.Fatalf("samples %v", p.Samples)
	}
	if r.Data[1].Level != "error" || r.Data[1].Samples[0][0] != f.base.Add(time.Minute).Unix() {
		t.Fatalf("second %+v", r.Data[1])
	}
	// The pattern is valid LogQL and selects its lines.
	lq := url.Values{"query": {`{app="api"} |> "` + p.Pattern + `"`}, "start": {f.ns(0)}, "end": {f.ns(time.Hour)}}
	lr := decode[streamsResp](t, f.get(t, "/loki/api/v1/query_range", lq))
	if n := len(lr.lines()); n != 6 {
		t.Fatalf("pattern filter selects %d lines", n)
	}
}

func TestDrilldownLimitsAndFormatQuery(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{MaxEntries: 300})
	type limitsResp struct {
		Limits struct {
			DiscoverServiceName []string `json:"discover_service_name"`
			MaxEntries          int      `json:"max_entries_limit_per_query"`
			MaxQueryLength      string   `json:"max_query_length"`
			VolumeEnabled       bool     `json:"volume_enabled"`
		} `json:"limits"`
		Patterns bool `json:"pattern_ingester_enabled"`
	}
	lim := decode[limitsResp](t, f.get(t, "/loki/api/v1/drilldown-limits", nil))
	if lim.Limits.MaxEntries != 300 || lim.Limits.MaxQueryLength != "30d1h" || !lim.Limits.VolumeEnabled || !lim.Patterns ||
		len(lim.Limits.DiscoverServiceName) == 0 || lim.Limits.DiscoverServiceName[0] != "service" {
		t.Fatalf("%+v", lim)
	}
	type strResp struct {
		Status string `json:"status"`
		Data   string `json:"data"`
	}
	r := decode[strResp](t, f.get(t, "/loki/api/v1/format_query", url.Values{"query": {`sum by(app)(rate({app="a"}|="x"[5m]))`}}))
	if !strings.Contains(r.Data, `{app="a"} |= "x"`) || !strings.Contains(r.Data, "[5m]") {
		t.Fatalf("formatted %q", r.Data)
	}
	if rep := f.get(t, "/loki/api/v1/format_query", url.Values{"query": {`{app=`}}); rep.code != 400 || !strings.Contains(rep.body, "parse error") {
		t.Fatalf("bad query: %+v", rep)
	}
}
