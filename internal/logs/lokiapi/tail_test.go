package lokiapi

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/vispyr/vispyr/internal/logs"
)

type tailMsg struct {
	Streams []struct {
		Stream map[string]string `json:"stream"`
		Values [][]string        `json:"values"`
	} `json:"streams"`
	DroppedEntries []struct {
		Labels    map[string]string `json:"labels"`
		Timestamp string            `json:"timestamp"`
	} `json:"dropped_entries"`
}

func (m tailMsg) lines() []string {
	var out []string
	for _, s := range m.Streams {
		for _, v := range s.Values {
			out = append(out, v[1])
		}
	}
	return out
}

// TestTailHistoryThenLive opens Loki's tail websocket as Grafana's live view
// does: it first gets the recent matching lines, oldest first, then each
// matching line as it is pushed, filtered by the query's pipeline.
func TestTailHistoryThenLive(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	f.push(t, "", shopLines()...)
	q := url.Values{"query": {`{app="shop"} |= "status" | logfmt | status >= 200`}, "start": {f.ns(0)}, "limit": {"10"}}
	ws := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/loki/api/v1/tail?" + q.Encode()
	conn, resp, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer conn.Close()
	conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var m tailMsg
	if err := conn.ReadJSON(&m); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.lines(), "|"); got != "level=error msg=boom status=500|level=info msg=ok status=200" {
		t.Fatalf("history %q", got)
	}
	// Pushed now: a line the pipeline drops, another app's line, and a match.
	f.push(t, "", line{`{"app":"shop","env":"prod"}`, 9 * time.Minute, "level=info msg=nostatus", ""},
		line{`{"app":"cart","env":"prod"}`, 9 * time.Minute, "level=info status=201", ""},
		line{`{"app":"shop","env":"prod"}`, 9*time.Minute + time.Second, "level=warn msg=slow status=201", ""})
	if err := conn.ReadJSON(&m); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(m.lines(), "|"); got != "level=warn msg=slow status=201" {
		t.Fatalf("live %q", got)
	}
	if m.Streams[0].Stream["status"] != "201" || m.Streams[0].Stream["app"] != "shop" {
		t.Fatalf("live labels %v", m.Streams[0].Stream)
	}
}

// TestTailReportsDroppedEntries: a live tail whose client reads too slowly
// loses lines, and says which, as Loki does: every line the query selects
// arrives either in a stream or in dropped_entries, with the labels it would
// have had (the regexp's too) and its timestamp; lines the filter refuses
// appear in neither.
func TestTailReportsDroppedEntries(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{})
	q := url.Values{"query": {`{app="shop"} |= "keep" | regexp "i=(?P<i>[0-9]+)"`}, "limit": {"100"}}
	conn, resp, err := websocket.DefaultDialer.Dial("ws"+strings.TrimPrefix(f.srv.URL, "http")+"/loki/api/v1/tail?"+q.Encode(), nil)
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	defer conn.Close()
	// Far more than the store buffers for a tail and the socket holds,
	// pushed while the client reads nothing.
	pad := strings.Repeat("x", 64<<10)
	want := map[string]string{} // "ns|i" of every line the query selects
	const n, perPush = 800, 12
	for i := 0; i < n; i += perPush {
		var lines []line
		for j := i; j < i+perPush; j++ {
			word := "keep"
			if j%10 == 9 {
				word = "skip"
			}
			l := line{fmt.Sprintf(`{"app":"shop","pod":"p%d"}`, j%8), time.Duration(j) * time.Millisecond, fmt.Sprintf("%s i=%d %s", word, j, pad), ""}
			lines = append(lines, l)
			if word == "keep" {
				want[f.ns(l.at)+"|"+strconv.Itoa(j)] = fmt.Sprintf("p%d", j%8)
			}
		}
		f.push(t, "", lines...)
	}
	got := map[string]string{}
	dropped := 0
	conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	for len(got) < len(want) {
		var m tailMsg
		if err := conn.ReadJSON(&m); err != nil {
			t.Fatalf("after %d of %d lines (%d dropped): %v", len(got), len(want), dropped, err)
		}
		for _, s := range m.Streams {
			for _, v := range s.Values {
				got[v[0]+"|"+s.Stream["i"]] = s.Stream["pod"]
			}
		}
		for _, e := range m.DroppedEntries {
			if e.Labels["app"] != "shop" || e.Labels["service_name"] != "shop" {
				t.Fatalf("dropped entry labels %v", e.Labels)
			}
			key := e.Timestamp + "|" + e.Labels["i"]
			if _, dup := got[key]; dup {
				t.Fatalf("line %s both sent and reported dropped", key)
			}
			got[key] = e.Labels["pod"]
			dropped++
		}
	}
	if !maps.Equal(got, want) {
		t.Fatalf("tail accounted for %d lines, the query selects %d", len(got), len(want))
	}
	if dropped == 0 {
		t.Fatalf("no line was dropped: the test did not make the tail fall behind")
	}
	t.Logf("%d of %d lines sent, %d reported dropped", len(want)-dropped, len(want), dropped)
}

func TestTailLimitPerTenant(t *testing.T) {
	f := newFixture(t, logs.QueryLimits{MaxTails: 1})
	ws := "ws" + strings.TrimPrefix(f.srv.URL, "http") + "/loki/api/v1/tail?" + url.Values{"query": {`{app="shop"}`}}.Encode()
	first, _, err := websocket.DefaultDialer.Dial(ws, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	_, resp, err := websocket.DefaultDialer.Dial(ws, nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("second tail: %v %v", err, resp)
	}
	// Another tenant has its own allowance.
	other, _, err := websocket.DefaultDialer.Dial(ws, http.Header{"X-Scope-OrgID": {"team-b"}})
	if err != nil {
		t.Fatal(err)
	}
	other.Close()
}

// blockingQuerier holds Select until the query's context ends, and reports
// that it ended: a stand-in for a query that reads for long.
type blockingQuerier struct {
	logs.Querier
	started, ended chan struct{}
}

func (b blockingQuerier) Select(ctx context.Context, tenant string, p logs.SelectParams) (logs.Iterator, error) {
	close(b.started)
	<-ctx.Done()
	close(b.ended)
	return nil, ctx.Err()
}

// TestClientDisconnectCancelsQuery: a client that gives up ends the query's
// work on the store, rather than leaving it to run to its timeout.
func TestClientDisconnectCancelsQuery(t *testing.T) {
	st, err := logs.Open(t.TempDir(), logs.Config{}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bq := blockingQuerier{Querier: st, started: make(chan struct{}), ended: make(chan struct{})}
	srv := httptest.NewServer(New(bq, logs.QueryLimits{Timeout: time.Hour}, discard()).Handler())
	defer srv.Close()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL+"/loki/api/v1/query_range?query="+url.QueryEscape(`{app="shop"}`), nil)
	done := make(chan error, 1)
	go func() {
		_, err := http.DefaultClient.Do(req)
		done <- err
	}()
	select {
	case <-bq.started:
	case <-time.After(10 * time.Second):
		t.Fatal("query never reached the store")
	}
	cancel()
	<-done
	select {
	case <-bq.ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the store kept reading after the client left")
	}
}

// TestQueryTimeout answers Loki's 504 when a query outlives logs.query.timeout.
func TestQueryTimeout(t *testing.T) {
	st, err := logs.Open(t.TempDir(), logs.Config{}, discard())
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	bq := blockingQuerier{Querier: st, started: make(chan struct{}), ended: make(chan struct{})}
	srv := httptest.NewServer(New(bq, logs.QueryLimits{Timeout: 200 * time.Millisecond}, discard()).Handler())
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/loki/api/v1/query_range?query=" + url.QueryEscape(`{app="shop"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d", resp.StatusCode)
	}
}
