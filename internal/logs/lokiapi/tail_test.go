package lokiapi

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
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
