package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// logCorpus is the same Loki push body for both stores: four streams
// (service_name app0/app1 × env prod/dev) of logfmt lines over ten minutes.
type logCorpus struct {
	body       []byte
	start, end time.Time // bounds holding every line, off any line's timestamp
	lines      int
}

func newLogCorpus() logCorpus {
	rng := rand.New(rand.NewSource(13))
	// Minute-aligned plus an offset, so no line sits on a step boundary.
	base := time.Now().Add(-12 * time.Minute).Truncate(time.Minute).Add(123 * time.Microsecond)
	levels := []string{"info", "info", "info", "warn", "error", "debug"}
	words := []string{"ok", "timeout", "needle-found", "retry", "cache-miss"}
	type stream struct {
		Stream map[string]string `json:"stream"`
		Values [][2]string       `json:"values"`
	}
	var streams []stream
	for s := range 4 {
		streams = append(streams, stream{Stream: map[string]string{"service_name": fmt.Sprintf("app%d", s%2), "env": []string{"prod", "dev"}[s/2]}})
	}
	const n = 1500
	for i := range n {
		s := rng.Intn(len(streams))
		ts := base.Add(time.Duration(i) * 400 * time.Millisecond).Add(time.Duration(s))
		status := []int{200, 200, 201, 404, 500, 503}[rng.Intn(6)]
		line := fmt.Sprintf("level=%s user=u%d status=%d msg=%s", levels[rng.Intn(len(levels))], rng.Intn(40), status, words[rng.Intn(len(words))])
		streams[s].Values = append(streams[s].Values, [2]string{strconv.FormatInt(ts.UnixNano(), 10), line})
	}
	body, _ := json.Marshal(map[string]any{"streams": streams})
	return logCorpus{body: body, start: base.Add(-30 * time.Second), end: base.Add(n * 400 * time.Millisecond).Add(30 * time.Second), lines: n}
}

func pushLoki(t *testing.T, url string, body []byte) {
	t.Helper()
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("push %s: %d %s", url, resp.StatusCode, b)
	}
}

func mustGet(t *testing.T, u string) []byte {
	t.Helper()
	resp, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", u, resp.StatusCode, b)
	}
	return b
}

// vispyrLines runs a LogQL log query on Vispyr's Loki API: "ns|line" sorted.
func vispyrLines(t *testing.T, base, q string, c logCorpus) []string {
	t.Helper()
	p := url.Values{"query": {q}, "start": {strconv.FormatInt(c.start.UnixNano(), 10)}, "end": {strconv.FormatInt(c.end.UnixNano(), 10)},
		"limit": {"5000"}, "direction": {"forward"}}
	var r struct {
		Data struct {
			Result []struct {
				Values [][2]string `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(mustGet(t, base+"/loki/api/v1/query_range?"+p.Encode()), &r); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			out = append(out, v[0]+"|"+v[1])
		}
	}
	slices.Sort(out)
	return out
}

// vlogsLines runs a LogsQL query on VictoriaLogs: "ns|line" sorted.
func vlogsLines(t *testing.T, base, q string, c logCorpus) []string {
	t.Helper()
	p := url.Values{"query": {q}, "start": {c.start.Format(time.RFC3339Nano)}, "end": {c.end.Format(time.RFC3339Nano)}}
	sc := bufio.NewScanner(bytes.NewReader(mustGet(t, base+"/select/logsql/query?"+p.Encode())))
	var out []string
	for sc.Scan() {
		var row struct {
			Time string `json:"_time"`
			Msg  string `json:"_msg"`
		}
		if err := json.Unmarshal(sc.Bytes(), &row); err != nil {
			t.Fatal(err)
		}
		ts, err := time.Parse(time.RFC3339Nano, row.Time)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, strconv.FormatInt(ts.UnixNano(), 10)+"|"+row.Msg)
	}
	slices.Sort(out)
	return out
}

// TestLogQLMatchesVictoriaLogs feeds Vispyr (Loki push on :3100) and
// VictoriaLogs (its Loki push endpoint) the same lines, then asks both the
// same questions, in LogQL and in LogsQL: line filters and stream selectors
// must select the very same lines, and counts by level, in total and per
// minute, must be equal.
func TestLogQLMatchesVictoriaLogs(t *testing.T) {
	t.Parallel()
	vl := harness.StartVictoriaLogs(t)
	v := harness.Start(t, harness.Options{})
	c := newLogCorpus()
	pushLoki(t, "http://"+v.LokiAddr+"/loki/api/v1/push", c.body)
	pushLoki(t, vl.URL("/insert/loki/api/v1/push"), c.body)
	mustGet(t, vl.URL("/internal/force_flush"))
	loki := "http://" + v.LokiAddr

	harness.Eventually(t, 20*time.Second, func() (bool, string) {
		n := len(vlogsLines(t, vl.URL(""), `*`, c))
		return n == c.lines, fmt.Sprintf("VictoriaLogs holds %d of %d lines", n, c.lines)
	})

	for _, q := range []struct{ logql, logsql string }{
		{`{env="prod"}`, `{env="prod"}`},
		{`{env="prod"} |= "needle"`, `{env="prod"} ~"needle"`},
		{`{service_name="app1"} != "status=500"`, `{service_name="app1"} NOT ~"status=500"`},
		{`{env=~"pro.*", service_name!="app0"} |~ "user=u1[0-9] "`, `{env=~"pro.*", service_name!="app0"} ~"user=u1[0-9] "`},
		{`{env="dev"} |= "level=error" |~ "status=5.."`, `{env="dev"} ~"level=error" ~"status=5.."`},
		{`{service_name=~"app.+"} |~ "(?i)TIMEOUT" != "level=debug"`, `{service_name=~"app.+"} ~"(?i)TIMEOUT" NOT ~"level=debug"`},
	} {
		got, want := vispyrLines(t, loki, q.logql, c), vlogsLines(t, vl.URL(""), q.logsql, c)
		if len(want) == 0 {
			t.Fatalf("%s selects nothing in VictoriaLogs: the corpus does not exercise it", q.logsql)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: Vispyr %d lines, VictoriaLogs (%s) %d lines; first difference %s",
				q.logql, len(got), q.logsql, len(want), firstDiff(got, want))
		}
	}

	// Counts by level over the whole range: an instant metric query against
	// LogsQL's stats.
	iq := url.Values{"query": {`sum by (level) (count_over_time({env="prod"} | logfmt [15m]))`}, "time": {strconv.FormatInt(c.end.UnixNano(), 10)}}
	var inst struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	json.Unmarshal(mustGet(t, loki+"/loki/api/v1/query?"+iq.Encode()), &inst)
	got := map[string]string{}
	for _, r := range inst.Data.Result {
		got[r.Metric["level"]] = r.Value[1].(string)
	}
	want := vlogsStats(t, vl.URL(""), fmt.Sprintf(`{env="prod"} _time:[%s, %s] | unpack_logfmt | stats by (level) count() as n`,
		c.start.Format(time.RFC3339Nano), c.end.Format(time.RFC3339Nano)), c.end)
	if len(want) < 4 || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("count by level: Vispyr %v, VictoriaLogs %v", got, want)
	}

	// Per minute: Loki's value at T counts (T-1m, T], VictoriaLogs' bucket
	// at t counts [t, t+1m); no line sits on a minute.
	from := c.start.Truncate(time.Minute).Add(time.Minute)
	rq := url.Values{"query": {`sum by (level) (count_over_time({service_name="app0"} | logfmt [1m]))`},
		"start": {strconv.FormatInt(from.UnixNano(), 10)}, "end": {strconv.FormatInt(c.end.UnixNano(), 10)}, "step": {"60s"}}
	var rng struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	json.Unmarshal(mustGet(t, loki+"/loki/api/v1/query_range?"+rq.Encode()), &rng)
	gotRange := map[string]string{}
	for _, r := range rng.Data.Result {
		for _, p := range r.Values {
			gotRange[fmt.Sprintf("%s@%.0f", r.Metric["level"], p[0].(float64)-60)] = p[1].(string)
		}
	}
	vq := url.Values{"query": {`{service_name="app0"} | unpack_logfmt | stats by (level) count() as n`},
		"start": {from.Add(-time.Minute).Format(time.RFC3339Nano)}, "end": {c.end.Add(-time.Nanosecond).Format(time.RFC3339Nano)}, "step": {"1m"}}
	var vr struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	json.Unmarshal(mustGet(t, vl.URL("/select/logsql/stats_query_range?"+vq.Encode())), &vr)
	wantRange := map[string]string{}
	for _, r := range vr.Data.Result {
		for _, p := range r.Values {
			wantRange[fmt.Sprintf("%s@%.0f", r.Metric["level"], p[0].(float64))] = fmt.Sprint(p[1])
		}
	}
	if len(wantRange) < 20 || fmt.Sprint(gotRange) != fmt.Sprint(wantRange) {
		t.Errorf("count by level per minute:\n Vispyr       %v\n VictoriaLogs %v", gotRange, wantRange)
	}
}

func vlogsStats(t *testing.T, base, q string, at time.Time) map[string]string {
	t.Helper()
	p := url.Values{"query": {q}, "time": {at.Format(time.RFC3339Nano)}}
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	json.Unmarshal(mustGet(t, base+"/select/logsql/stats_query?"+p.Encode()), &r)
	out := map[string]string{}
	for _, s := range r.Data.Result {
		out[s.Metric["level"]] = fmt.Sprint(s.Value[1])
	}
	return out
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprintf("at %d: %q vs %q", i, a[i], b[i])
		}
	}
	if len(a) > len(b) {
		return "Vispyr has more: " + strings.Join(a[len(b):min(len(a), len(b)+3)], ", ")
	}
	if len(b) > len(a) {
		return "VictoriaLogs has more: " + strings.Join(b[len(a):min(len(b), len(a)+3)], ", ")
	}
	return "none"
}
