package signals

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/otel/trace"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// TestGrafanaTraceToLogs follows the shipped Grafana provisioning from a span
// to its logs: a span sent by the OTel Go SDK, OTLP log records of that span
// and of another trace of the same service, then the trace-to-logs query the
// provisioned Tempo datasource builds for the span, over the window Grafana
// asks for, on Loki's query_range: it returns the span's lines and no others.
func TestGrafanaTraceToLogs(t *testing.T) {
	v := harness.Start(t, harness.Options{})
	const svc = "tracelogs-checkout"
	tp := provider(t, v.OTLPGRPCAddr, svc)
	_, span := tp.Tracer("shop").Start(context.Background(), "POST /pay", trace.WithSpanKind(trace.SpanKindServer))
	sc := span.SpanContext()
	span.End()
	if err := tp.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	// Log records as an OTel SDK exports them: the span's trace context on
	// each record of the span, none on the other trace's.
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", svc)
	recs := rl.ScopeLogs().AppendEmpty().LogRecords()
	other := pcommon.TraceID{1, 2, 3}
	now := time.Now()
	for i, body := range []string{"payment started", "card declined", "other request"} {
		r := recs.AppendEmpty()
		r.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(time.Duration(i) * time.Millisecond)))
		r.Body().SetStr(body)
		r.SetSeverityText("INFO")
		if i < 2 {
			r.SetTraceID(pcommon.TraceID(sc.TraceID()))
			r.SetSpanID(pcommon.SpanID(sc.SpanID()))
		} else {
			r.SetTraceID(other)
		}
	}
	body, _ := plogotlp.NewExportRequestFromLogs(ld).MarshalProto()
	resp, err := http.Post(v.OTLPHTTPURL("/v1/logs"), "application/x-protobuf", bytes.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("send logs: %v %v", err, resp)
	}
	resp.Body.Close()

	// The span's tags mapped as the provisioning maps them (service.name → service_name).
	q := traceToLogsQuery(t, fmt.Sprintf("service_name=%q", svc), sc.TraceID().String())
	params := url.Values{"query": {q}, "limit": {"100"},
		"start": {fmt.Sprint(now.Add(-5 * time.Minute).UnixNano())}, "end": {fmt.Sprint(now.Add(5 * time.Minute).UnixNano())}}
	resp, err = http.Get(v.URL(v.LokiAddr, "/loki/api/v1/query_range?"+params.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Values [][]string `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%s: HTTP %d", q, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			got = append(got, v[1])
		}
	}
	slices.Sort(got)
	if want := []string{"card declined", "payment started"}; !slices.Equal(got, want) {
		t.Errorf("%s returned %q, want the span's lines %q", q, got, want)
	}
}
