package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// TestLokiGoClientPush pushes with Grafana's Go Loki client,
// github.com/grafana/loki-client-go (Apache-2.0, promtail's batching client
// on its own; run as testdata/lokiclient, its own module), in both of its
// encodings: snappy protobuf to /loki/api/v1/push, and JSON, which it writes
// in the legacy shape, to /api/prom/push, as Loki takes it. Each run has a
// tenant, two streams and structured metadata on some lines; Loki's query
// API must return exactly the lines sent, under the labels the client sent
// and with their structured metadata.
func TestLokiGoClientPush(t *testing.T) {
	t.Parallel()
	client := buildLokiClient(t)
	v := harness.Start(t, harness.Options{})
	base := time.Now().Add(-5 * time.Minute).Truncate(time.Second)
	const n = 40
	for _, tc := range []struct{ enc, path string }{{"protobuf", "/loki/api/v1/push"}, {"json", "/api/prom/push"}} {
		tenant := "team-" + tc.enc
		var in bytes.Buffer
		var want []string
		for i := range n {
			e := clientLine{
				Labels: map[string]string{"job": "lokiclient", "encoding": tc.enc, "pod": fmt.Sprintf("p%d", i%2)},
				TS:     base.Add(time.Duration(i)*time.Second + time.Duration(i)*time.Microsecond).UnixNano(),
				Line:   fmt.Sprintf("msg=%q i=%d enc=%s", "request served", i, tc.enc),
				level:  "unknown", // Loki 3 adds detected_level; no level in the line
			}
			if i%4 == 0 {
				e.Line, e.level = "level=warn "+e.Line, "warn"
			}
			// The client's JSON (legacy) encoding leaves structured metadata
			// out; its protobuf carries it.
			if i%3 == 0 && tc.enc == "protobuf" {
				e.Meta = map[string]string{"trace_id": fmt.Sprintf("%032x", i+1)}
			}
			b, _ := json.Marshal(e)
			in.Write(append(b, '\n'))
			want = append(want, e.expected())
		}
		slices.Sort(want)
		args := []string{"-url", "http://" + v.LokiAddr + tc.path, "-tenant", tenant}
		if tc.enc == "json" {
			args = append(args, "-json")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, client, args...)
		cmd.Stdin = &in
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			t.Fatalf("%s: loki-client-go: %v\n%s", tc.enc, err, out)
		}
		// The client returns once its last batch was answered 2xx: durable.
		got := categorizedEntries(t, "http://"+v.LokiAddr, tenant, `{job="lokiclient"}`, base.Add(-time.Minute), base.Add(time.Hour))
		if !slices.Equal(got, want) {
			t.Errorf("%s: Vispyr returns %d entries, the client sent %d; first difference %s", tc.enc, len(got), len(want), firstDiff(got, want))
		}
	}
}

// buildLokiClient builds testdata/lokiclient (its modules are fetched by
// .ci/install.d/45-logs.sh) and returns the binary's path.
func buildLokiClient(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "lokiclient")
	cmd := exec.Command("go", "build", "-mod=readonly", "-o", bin, ".")
	cmd.Dir = filepath.Join("testdata", "lokiclient")
	cmd.Env = append(os.Environ(), "GOWORK=off")
	if out, err := cmd.CombinedOutput(); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("build loki-client-go (run .ci/install.d/45-logs.sh): %v\n%s", err, out)
		}
		t.Skipf("build loki-client-go (run .ci/install.d/45-logs.sh): %v\n%s", err, out)
	}
	return bin
}

// clientLine is one line handed to testdata/lokiclient.
type clientLine struct {
	Labels map[string]string `json:"labels"`
	TS     int64             `json:"ts"`
	Line   string            `json:"line"`
	Meta   map[string]string `json:"meta,omitempty"`
	level  string            // the detected_level Loki 3 stores with it
}

// expected is what categorizedEntries returns for the line, with Loki 3's
// ingest defaults: service_name discovered from job, detected_level kept
// as structured metadata.
func (e clientLine) expected() string {
	l := map[string]string{"service_name": e.Labels["job"]}
	for k, v := range e.Labels {
		l[k] = v
	}
	m := map[string]string{"detected_level": e.level}
	for k, v := range e.Meta {
		m[k] = v
	}
	lj, _ := json.Marshal(l)
	mj, _ := json.Marshal(m)
	return fmt.Sprintf("%s %d %s %s", lj, e.TS, mj, e.Line)
}

// categorizedEntries runs a log query with categorize-labels, as Grafana
// sends it, and returns every entry as "labels ns metadata line", sorted.
func categorizedEntries(t *testing.T, base, tenant, q string, start, end time.Time) []string {
	t.Helper()
	p := url.Values{"query": {q}, "start": {strconv.FormatInt(start.UnixNano(), 10)}, "end": {strconv.FormatInt(end.UnixNano(), 10)},
		"limit": {"5000"}, "direction": {"forward"}}
	req, _ := http.NewRequest(http.MethodGet, base+"/loki/api/v1/query_range?"+p.Encode(), nil)
	req.Header.Set("X-Scope-OrgID", tenant)
	req.Header.Set("X-Loki-Response-Encoding-Flags", "categorize-labels")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Stream map[string]string `json:"stream"`
				Values [][3]json.RawMessage
			} `json:"result"`
		} `json:"data"`
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("query %s: %s", q, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range r.Data.Result {
		lj, _ := json.Marshal(s.Stream)
		for _, v := range s.Values {
			var ns, line string
			var meta struct {
				StructuredMetadata map[string]string `json:"structuredMetadata"`
			}
			json.Unmarshal(v[0], &ns)
			json.Unmarshal(v[1], &line)
			json.Unmarshal(v[2], &meta)
			if meta.StructuredMetadata == nil {
				meta.StructuredMetadata = map[string]string{}
			}
			mj, _ := json.Marshal(meta.StructuredMetadata)
			out = append(out, fmt.Sprintf("%s %s %s %s", lj, ns, mj, line))
		}
	}
	slices.Sort(out)
	return out
}
