package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

var queryClient = &http.Client{Timeout: 2 * time.Minute}

func getBody(u string) ([]byte, error) {
	resp, err := queryClient.Get(u)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %d: %.300s", resp.StatusCode, b)
	}
	return b, nil
}

// window is the queries' range: every line of the load, a minute either side.
func window(l *Load) (start, end time.Time) {
	return l.start.Add(-time.Minute), l.end.Add(time.Minute)
}

// lokiNeedle runs {service_name="svc"} |= "needle" over the whole load on
// Loki's query_range and counts the lines it returns.
func lokiNeedle(base string, l *Load, svc string) (int, error) {
	start, end := window(l)
	q := url.Values{"query": {fmt.Sprintf(`{service_name=%q} |= "needle"`, svc)}, "limit": {"5000"},
		"start": {strconv.FormatInt(start.UnixNano(), 10)}, "end": {strconv.FormatInt(end.UnixNano(), 10)}}
	b, err := getBody(base + "/loki/api/v1/query_range?" + q.Encode())
	if err != nil {
		return 0, fmt.Errorf("needle query: %w", err)
	}
	var r struct {
		Data struct {
			Result []struct {
				Values [][]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("needle query: %w", err)
	}
	n := 0
	for _, s := range r.Data.Result {
		n += len(s.Values)
	}
	return n, nil
}

// lokiByLevel runs sum by (level) (rate({env="prod"}[1m])) with a 1m step
// over the load and adds the rates back up to lines (× 60 s per step).
func lokiByLevel(base string, l *Load) (float64, error) {
	start, end := window(l)
	q := url.Values{"query": {`sum by (level) (rate({env="prod"}[1m]))`}, "step": {"60"},
		"start": {strconv.FormatInt(start.UnixNano(), 10)}, "end": {strconv.FormatInt(end.UnixNano(), 10)}}
	b, err := getBody(base + "/loki/api/v1/query_range?" + q.Encode())
	if err != nil {
		return 0, fmt.Errorf("rate query: %w", err)
	}
	var r struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Values [][2]any          `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("rate query: %w", err)
	}
	if len(r.Data.Result) != levelKinds {
		return 0, fmt.Errorf("rate query: %d series, want one per level (%d)", len(r.Data.Result), levelKinds)
	}
	total := 0.0
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			f, _ := strconv.ParseFloat(fmt.Sprint(v[1]), 64)
			total += f * 60
		}
	}
	return total, nil
}

// logsqlNeedle is the needle query in LogsQL: the stream filter and the word
// "needle", counted from VictoriaLogs' JSON-lines answer.
func logsqlNeedle(base string, l *Load, svc string) (int, error) {
	start, end := window(l)
	q := url.Values{"query": {fmt.Sprintf(`{service_name=%q} needle`, svc)}, "limit": {"5000"},
		"start": {start.Format(time.RFC3339Nano)}, "end": {end.Format(time.RFC3339Nano)}}
	b, err := getBody(base + "/select/logsql/query?" + q.Encode())
	if err != nil {
		return 0, fmt.Errorf("logsql needle query: %w", err)
	}
	n := 0
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if len(sc.Bytes()) > 0 {
			n++
		}
	}
	return n, sc.Err()
}

// logsqlByLevel is the per-level rate in LogsQL: count() per level in 1m
// buckets on stats_query_range, the same scan and grouping; the counts are
// the lines the Loki rate adds back up to.
func logsqlByLevel(base string, l *Load) (float64, error) {
	start, end := window(l)
	q := url.Values{"query": {`{env="prod"} | stats by (level) count() as n`}, "step": {"1m"},
		"start": {start.Format(time.RFC3339Nano)}, "end": {end.Format(time.RFC3339Nano)}}
	b, err := getBody(base + "/select/logsql/stats_query_range?" + q.Encode())
	if err != nil {
		return 0, fmt.Errorf("logsql rate query: %w", err)
	}
	var r struct {
		Data struct {
			Result []struct {
				Values [][2]any `json:"values"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return 0, fmt.Errorf("logsql rate query: %w", err)
	}
	if len(r.Data.Result) != levelKinds {
		return 0, fmt.Errorf("logsql rate query: %d series, want one per level (%d)", len(r.Data.Result), levelKinds)
	}
	total := 0.0
	for _, s := range r.Data.Result {
		for _, v := range s.Values {
			f, _ := strconv.ParseFloat(fmt.Sprint(v[1]), 64)
			total += f
		}
	}
	return total, nil
}
