package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// query is one dashboard request, asked of every system over the same span.
type query struct {
	name string
	path string // API path
	// params are the request's parameters besides start and end (and step
	// for query_range).
	params url.Values
}

// dashboardQueries are what the shipped dashboards and the UI ask all day.
func dashboardQueries() []query {
	rng := func(q string) query {
		return query{name: q, path: "/api/v1/query_range", params: url.Values{"query": {q}}}
	}
	return []query{
		rng(`sum by (job) (rate(node_network_receive_bytes_total[5m]))`),
		rng(`histogram_quantile(0.99, sum by (le) (rate(traces_spanmetrics_latency_bucket[5m])))`),
		rng(`count({__name__=~".+"})`),
		rng(`topk(5, sum by (instance) (rate(node_cpu_seconds_total[5m])))`),
		{name: "label values: job", path: "/api/v1/label/job/values"},
		{name: "label values: __name__", path: "/api/v1/label/__name__/values"},
		{name: `series: node_cpu_seconds_total{instance="host-0007:9100"}`, path: "/api/v1/series",
			params: url.Values{"match[]": {`node_cpu_seconds_total{instance="host-0007:9100"}`}}},
	}
}

// answer is one request's outcome.
type answer struct {
	took   time.Duration
	series int    // series (or values) in the result
	digest string // of the result, to compare configurations of one system
	err    error
}

var client = &http.Client{Timeout: 5 * time.Minute}

// ask runs q against api over [start, end] (step for range queries).
func ask(api string, q query, start, end time.Time, step time.Duration) answer {
	v := url.Values{"start": {unix(start)}, "end": {unix(end)}}
	for k, vs := range q.params {
		v[k] = vs
	}
	if q.path == "/api/v1/query_range" {
		v.Set("step", strconv.FormatFloat(step.Seconds(), 'f', -1, 64))
	}
	t0 := time.Now()
	resp, err := client.Get(api + q.path + "?" + v.Encode())
	if err != nil {
		return answer{err: err}
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	took := time.Since(t0)
	if err != nil {
		return answer{err: err}
	}
	var r struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.Status != "success" {
		return answer{err: fmt.Errorf("%s: %d %s %v", q.name, resp.StatusCode, bytes.TrimSpace(body[:min(len(body), 300)]), err)}
	}
	return answer{took: took, series: count(r.Data), digest: fmt.Sprintf("%x", sha256.Sum256(r.Data))[:12]}
}

// count is the number of series or values in an API answer's data.
func count(data json.RawMessage) int {
	var list []json.RawMessage
	if json.Unmarshal(data, &list) == nil {
		return len(list)
	}
	var m struct {
		Result []json.RawMessage `json:"result"`
	}
	_ = json.Unmarshal(data, &m)
	return len(m.Result)
}

func unix(t time.Time) string { return strconv.FormatFloat(float64(t.UnixMilli())/1000, 'f', -1, 64) }
