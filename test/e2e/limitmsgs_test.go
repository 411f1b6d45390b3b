package e2e

import (
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// Every per-tenant limit, hit through a real ingest path, answers with the
// upstream's status and words, naming Vispyr's setting: Mimir's label,
// series and rate limits, Tempo's TRACE_TOO_LARGE, Pyroscope's samples count
// limit, and a "too many tenants" refusal for tenants named past
// limits.max_tenants (anyone may name one when auth is off).
func TestTenantLimitMessages(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{Config: `limits:
  max_tenants: 4
  tenants:
    series-t: {max_active_series: 3}
    rate-t: {ingestion_rate: 10, ingestion_burst_size: 10}
    small-t: {max_spans_per_trace: 3, max_profile_samples: 5}
`})
	now := time.Now().UnixMilli()
	write := func(tenant string, series ...[]prompb.Label) harness.RemoteWriteResult {
		t.Helper()
		req := &prompb.WriteRequest{}
		for _, ls := range series {
			req.Timeseries = append(req.Timeseries, prompb.TimeSeries{Labels: ls, Samples: []prompb.Sample{{Timestamp: now, Value: 1}}})
		}
		res, err := harness.RemoteWrite(tenantClient(tenant), v.MetricsURL("/api/v1/write"), req)
		if err != nil {
			t.Fatalf("remote write as %q: %v", tenant, err)
		}
		return res
	}
	expect := func(what string, res harness.RemoteWriteResult, code int, words ...string) {
		t.Helper()
		if res.Status != code {
			t.Errorf("%s: %d %q, want %d", what, res.Status, res.Body, code)
		}
		for _, w := range words {
			if !strings.Contains(res.Body, w) {
				t.Errorf("%s: %q does not say %q", what, res.Body, w)
			}
		}
		if code == http.StatusTooManyRequests && res.Header.Get("Retry-After") == "" {
			t.Errorf("%s: 429 without Retry-After", what)
		}
	}
	series := func(name string, kv ...string) []prompb.Label {
		return harness.Labels(append([]string{"__name__", name}, kv...)...)
	}

	// Mimir's label limits, on by default for every tenant.
	many := []string{}
	for i := range 30 {
		many = append(many, fmt.Sprintf("l%02d", i), "v")
	}
	expect("31 labels", write("", series("lim_many", many...)), 400,
		"received a series whose number of labels exceeds the limit (actual: 31, limit: 30)", "max_label_names_per_series")
	expect("label name of 1025 bytes", write("", series("lim_name", strings.Repeat("n", 1025), "v")), 400,
		"received a series whose label name length exceeds the limit", "max_label_name_length")
	expect("label value of 2049 bytes", write("", series("lim_value", "l", strings.Repeat("v", 2049))), 400,
		"received a series whose label value length exceeds the limit", "max_label_value_length")

	// Mimir's active series and ingestion rate limits, from tenant overrides.
	expect("3 series", write("series-t", series("s", "i", "1"), series("s", "i", "2"), series("s", "i", "3")), 204)
	expect("a 4th series", write("series-t", series("s", "i", "4")), 429, "per-user series limit of 3 exceeded", "max_active_series")
	expect("a known series", write("series-t", series("s", "i", "1")), 204)
	var burst [][]prompb.Label
	for i := range 11 {
		burst = append(burst, series("r", "i", fmt.Sprint(i)))
	}
	expect("11 samples at 10/s", write("rate-t", burst...), 429,
		"exceeded the ingestion rate limit, set to 10 items/s with a maximum allowed burst of 10", "ingestion_rate")

	// The default tenant, series-t and rate-t hold a TSDB each: a 4th tenant
	// fits, a 5th is refused, and known tenants keep writing.
	expect("a 4th tenant", write("extra-1", series("e")), 204)
	expect("a 5th tenant", write("extra-2", series("e")), 429, "too many tenants", "extra-2", "limits.max_tenants (4)")
	expect("a known tenant", write("series-t", series("s", "i", "2")), 204)

	// Tempo's TRACE_TOO_LARGE: 5 spans of one trace for a tenant capped at 3
	// keep 3, and the OTLP answer is a partial success naming the trace.
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", "big")
	spans := rs.ScopeSpans().AppendEmpty().Spans()
	for i := range 5 {
		sp := spans.AppendEmpty()
		sp.SetTraceID(pcommon.TraceID{0xb1, 15: 1})
		sp.SetSpanID(pcommon.SpanID{0xb1, 7: byte(i + 1)})
		sp.SetName("work")
		sp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-time.Millisecond)))
		sp.SetEndTimestamp(pcommon.NewTimestampFromTime(time.Now()))
	}
	body, _ := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	req, _ := http.NewRequest(http.MethodPost, v.OTLPHTTPURL("/v1/traces"), strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/x-protobuf")
	req.Header.Set("X-Scope-OrgID", "small-t")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	rb, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	out := ptraceotlp.NewExportResponse()
	if err := out.UnmarshalProto(rb); err != nil || resp.StatusCode != 200 {
		t.Fatalf("OTLP traces over the spans limit: %d %v", resp.StatusCode, err)
	}
	ps := out.PartialSuccess()
	if ps.RejectedSpans() != 2 || !strings.Contains(ps.ErrorMessage(), "TRACE_TOO_LARGE: max size of trace (3 spans, max_spans_per_trace) exceeded while adding 2 spans to trace b1000000000000000000000000000001 for tenant small-t") {
		t.Errorf("OTLP partial success: rejected %d, %q; want 2 and Tempo's TRACE_TOO_LARGE", ps.RejectedSpans(), ps.ErrorMessage())
	}

	// Pyroscope's samples count limit: 6 folded lines (samples) for a tenant
	// capped at 5 get 400; the default tenant keeps the server-wide limit.
	folded := "main;a 1\nmain;b 1\nmain;c 1\nmain;d 1\nmain;e 1\nmain;f 1\n"
	for _, tc := range []struct {
		tenant string
		code   int
		words  string
	}{
		{"small-t", 400, "exceeds the samples count limit (max_profile_stacktrace_samples, actual: 6, limit: 5)"},
		{"", 200, ""},
	} {
		req, _ := http.NewRequest(http.MethodPost, "http://"+v.PyroscopeIngestAddr+"/ingest?format=folded&name=lim-app", strings.NewReader(folded))
		req.Header.Set("Content-Type", "binary/octet-stream")
		resp, err := tenantClient(tc.tenant).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.code || !strings.Contains(string(b), tc.words) {
			t.Errorf("6 samples as %q: %d %q, want %d saying %q", tc.tenant, resp.StatusCode, b, tc.code, tc.words)
		}
	}
	v.CheckServing(t)
}
