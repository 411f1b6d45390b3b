package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// fwTraces builds traces first..first+n-1 of spans spans each, every span
// with attributes that identify it, as one OTLP request.
func fwTraces(service string, first, n, spans int, at time.Time) (ptrace.Traces, []pcommon.TraceID) {
	td := ptrace.NewTraces()
	rs := td.ResourceSpans().AppendEmpty()
	rs.Resource().Attributes().PutStr("service.name", service)
	ss := rs.ScopeSpans().AppendEmpty()
	var ids []pcommon.TraceID
	for i := first; i < first+n; i++ {
		id := pcommon.TraceID{0xf0, 1: byte(i >> 8), 2: byte(i), 15: 1}
		copy(id[3:], service)
		ids = append(ids, id)
		for j := range spans {
			sp := ss.Spans().AppendEmpty()
			sp.SetTraceID(id)
			sp.SetSpanID(pcommon.SpanID{0xa0, 1: byte(i), 2: byte(j), 7: 1})
			if j > 0 {
				sp.SetParentSpanID(pcommon.SpanID{0xa0, 1: byte(i), 7: 1})
			}
			sp.SetName(fmt.Sprintf("op-%d", j))
			sp.SetKind(ptrace.SpanKindServer)
			sp.Attributes().PutStr("fw.span", fmt.Sprintf("%d/%d", i, j))
			sp.Attributes().PutInt("fw.index", int64(j))
			sp.SetStartTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(j) * time.Millisecond)))
			end := at.Add(time.Duration(j+5) * time.Millisecond)
			if j == 0 { // the root spans its children
				end = at.Add(time.Duration(spans+5) * time.Millisecond)
			}
			sp.SetEndTimestamp(pcommon.NewTimestampFromTime(end))
		}
	}
	return td, ids
}

// postTraces sends td by OTLP/HTTP and fails the test unless it is accepted.
func postTraces(t *testing.T, url string, td ptrace.Traces) {
	t.Helper()
	body, err := ptraceotlp.NewExportRequestFromTraces(td).MarshalProto()
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.Post(url, "application/x-protobuf", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("OTLP export to %s: %s %s", url, resp.Status, b)
	}
}

// jsonSpans reads an OTLP JSON trace (Tempo's v2 {"trace":…}, Jaeger's v3
// {"result":…}) as one line per span: name and sorted attributes.
func jsonSpans(body []byte) ([]string, error) {
	type kv struct {
		Key   string         `json:"key"`
		Value map[string]any `json:"value"`
	}
	type span struct {
		Name       string `json:"name"`
		Attributes []kv   `json:"attributes"`
	}
	type otlp struct {
		ResourceSpans []struct {
			ScopeSpans []struct {
				Spans []span `json:"spans"`
			} `json:"scopeSpans"`
		} `json:"resourceSpans"`
	}
	var doc struct {
		Trace  *otlp `json:"trace"`
		Result *otlp `json:"result"`
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		return nil, err
	}
	tr := doc.Trace
	if tr == nil {
		tr = doc.Result
	}
	if tr == nil {
		return nil, fmt.Errorf("no trace in %.200s", body)
	}
	var out []string
	for _, rs := range tr.ResourceSpans {
		for _, ss := range rs.ScopeSpans {
			for _, s := range ss.Spans {
				var attrs []string
				for _, a := range s.Attributes {
					if strings.HasPrefix(a.Key, "@jaeger@") {
						continue // the query's own notes (clock skew), not stored data
					}
					for _, v := range a.Value {
						attrs = append(attrs, fmt.Sprintf("%s=%v", a.Key, v))
					}
				}
				sort.Strings(attrs)
				out = append(out, s.Name+" "+strings.Join(attrs, ","))
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// wantSpans is jsonSpans' form of the spans of one trace built by fwTraces.
func wantSpans(i, spans int) []string {
	var out []string
	for j := range spans {
		out = append(out, fmt.Sprintf("op-%d fw.index=%d,fw.span=%d/%d", j, j, i, j))
	}
	sort.Strings(out)
	return out
}

// holdsTraces waits until every trace of ids is served at traceURL(id) with
// exactly the spans fwTraces made.
func holdsTraces(t *testing.T, name string, traceURL func(pcommon.TraceID) string, ids []pcommon.TraceID, spans int) {
	t.Helper()
	idx := make([]int, len(ids))
	for i := range idx {
		idx[i] = i
	}
	holdsTracesAt(t, name, traceURL, ids, idx, spans)
}

// holdsTracesAt is holdsTraces for traces that fwTraces numbered idx[k].
func holdsTracesAt(t *testing.T, name string, traceURL func(pcommon.TraceID) string, ids []pcommon.TraceID, idx []int, spans int) {
	t.Helper()
	for k, id := range ids {
		i := idx[k]
		harness.Eventually(t, 30*time.Second, func() (bool, string) {
			resp, err := http.Get(traceURL(id))
			if err != nil {
				return false, err.Error()
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				return false, fmt.Sprintf("%s: trace %d: %s", name, i, resp.Status)
			}
			got, err := jsonSpans(body)
			if err != nil {
				return false, fmt.Sprintf("%s: trace %d: %v", name, i, err)
			}
			want := wantSpans(i, spans)
			return strings.Join(got, "\n") == strings.Join(want, "\n"),
				fmt.Sprintf("%s: trace %d holds %d spans:\n%s\nwant %d:\n%s", name, i, len(got), strings.Join(got, "\n"), len(want), strings.Join(want, "\n"))
		})
	}
}

func tempoTrace(v *harness.Vispyr) func(pcommon.TraceID) string {
	return func(id pcommon.TraceID) string { return "http://" + v.TempoAddr + "/api/v2/traces/" + id.String() }
}

// serve with a forward: section stores everything locally and sends a copy
// on: remote write and span metrics to VictoriaMetrics, spans, profiles and
// log lines to a second Vispyr.
func TestServeStoresAndForwards(t *testing.T) {
	t.Parallel()
	vm := harness.StartVictoriaMetrics(t)
	peer := harness.Start(t, harness.Options{})
	v := harness.Start(t, harness.Options{Args: []string{"--generator.collection-interval=1s"}, Config: fmt.Sprintf(`
forward:
  metrics:
    - name: vm
      url: %s
      queue: {batch_deadline: 100ms}
  traces:
    - name: peer
      url: http://%s
      queue: {batch_deadline: 100ms}
  profiles:
    - name: peer
      url: http://%s
      queue: {batch_deadline: 100ms}
  logs:
    - name: peer
      url: http://%s
      queue: {batch_deadline: 100ms}
`, vm.URL("/api/v1/write"), peer.OTLPHTTPAddr, peer.PyroscopeAddr, peer.LokiAddr)})

	base := time.Now().Add(-30 * time.Minute).Truncate(time.Second)
	acked, sum := fwSeries(t, v.MetricsURL("/api/v1/write"), 5, 20, 10, base)
	td, ids := fwTraces("fw-serve", 0, 5, 4, time.Now())
	postTraces(t, v.OTLPHTTPURL("/v1/traces"), td)
	from := time.Now().Add(-time.Minute).Truncate(time.Second)
	for i := range 5 {
		if err := foldedSend(i, from)(v.PyroscopeIngestAddr, "fw-serve"); err != nil {
			t.Fatal(err)
		}
	}

	c := newLogCorpus()
	pushLoki(t, "http://"+v.LokiAddr+"/loki/api/v1/push", c.body)

	at := base.Add(time.Hour)
	wantLines := corpusLines(t, c)
	for name, addr := range map[string]string{"vispyr serve itself": v.LokiAddr, "second vispyr (forwarded)": peer.LokiAddr} {
		harness.Eventually(t, 20*time.Second, func() (bool, string) {
			got := vispyrLines(t, "http://"+addr, `{service_name=~"app.+"}`, c)
			return slices.Equal(got, wantLines), fmt.Sprintf("%s holds %d log lines of %d", name, len(got), len(wantLines))
		})
	}
	holds(t, "vispyr serve itself", v.MetricsURL(""), at, acked, sum)
	holds(t, "victoria-metrics (forwarded)", vm.URL(""), at, acked, sum)
	holdsTraces(t, "vispyr serve itself", tempoTrace(v), ids, 4)
	holdsTraces(t, "second vispyr (forwarded)", tempoTrace(peer), ids, 4)
	// The span metrics of the generator are forwarded too.
	vmAPI := harness.NewAPI(vm.URL(""))
	harness.Eventually(t, 30*time.Second, func() (bool, string) {
		_, s, _ := vmAPI.Instant(t, `sum(traces_spanmetrics_calls_total{service="fw-serve"})`, time.Now())
		return len(s) == 1 && s[0].Value.Float() == 20, fmt.Sprintf("victoria-metrics span metrics: %v, want 20 calls", s)
	})
	typ := "process_cpu:cpu:nanoseconds:cpu:nanoseconds"
	harness.Eventually(t, 30*time.Second, func() (bool, string) {
		local, _ := flame(t, v.PyroscopeAddr, typ, "fw-serve")
		fwd, _ := flame(t, peer.PyroscopeAddr, typ, "fw-serve")
		return local > 0 && local == fwd, fmt.Sprintf("profiles: local total %d, forwarded total %d", local, fwd)
	})
}
