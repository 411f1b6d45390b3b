package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

var httpClient = &http.Client{Timeout: 30 * time.Second}

// traceSpans fetches a trace by ID as Tempo's v2 protobuf
// (TraceByIDResponse, the trace in field 1) and counts its spans; 0 when
// not found.
func traceSpans(tempo string, id [16]byte) (int, error) {
	req, _ := http.NewRequest("GET", tempo+"/api/v2/traces/"+hex.EncodeToString(id[:]), nil)
	req.Header.Set("Accept", "application/protobuf")
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if resp.StatusCode == http.StatusNotFound {
		return 0, nil
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("trace by ID: %s: %s", resp.Status, body)
	}
	for len(body) > 0 {
		num, typ, n := protowire.ConsumeTag(body)
		if n < 0 {
			return 0, fmt.Errorf("decode trace response: %w", protowire.ParseError(n))
		}
		body = body[n:]
		if num == 1 && typ == protowire.BytesType {
			inner, n := protowire.ConsumeBytes(body)
			if n < 0 {
				return 0, fmt.Errorf("decode trace response: %w", protowire.ParseError(n))
			}
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(inner)
			if err != nil {
				return 0, fmt.Errorf("decode trace: %w", err)
			}
			return td.SpanCount(), nil
		}
		n = protowire.ConsumeFieldValue(num, typ, body)
		if n < 0 {
			return 0, fmt.Errorf("decode trace response: %w", protowire.ParseError(n))
		}
		body = body[n:]
	}
	return 0, nil
}

// search runs a TraceQL query over [start, end] and returns the trace IDs
// found (hex, leading zeros trimmed as Tempo prints them).
func search(tempo, q string, limit int, start, end time.Time) ([]string, error) {
	v := url.Values{"q": {q}, "limit": {strconv.Itoa(limit)},
		"start": {strconv.FormatInt(start.Unix(), 10)}, "end": {strconv.FormatInt(end.Unix(), 10)}}
	resp, err := httpClient.Get(tempo + "/api/search?" + v.Encode())
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		return nil, fmt.Errorf("search %s: %s: %s", q, resp.Status, b)
	}
	var r struct {
		Traces []struct {
			TraceID string `json:"traceID"`
		} `json:"traces"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return nil, fmt.Errorf("decode search: %w", err)
	}
	ids := make([]string, len(r.Traces))
	for i, t := range r.Traces {
		ids[i] = t.TraceID
	}
	return ids, nil
}

// metricSum sums every sample of a metric on the admin /metrics page.
func metricSum(admin, name string) (float64, error) {
	resp, err := httpClient.Get(admin + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var sum float64
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) || (len(line) > len(name) && line[len(name)] != ' ' && line[len(name)] != '{') {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err == nil {
			sum += v
			found = true
		}
	}
	if !found {
		return 0, fmt.Errorf("no %s on %s/metrics", name, admin)
	}
	return sum, sc.Err()
}

// waitHeadCut waits until the trace head holds nothing: every span is in a
// block on disk.
func waitHeadCut(admin string, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	for time.Since(t0) < timeout {
		v, err := metricSum(admin, "vispyr_traces_head_bytes")
		if err != nil {
			return 0, err
		}
		if v == 0 {
			return time.Since(t0), nil
		}
		time.Sleep(200 * time.Millisecond)
	}
	return 0, fmt.Errorf("head not cut within %v", timeout)
}

// walSyncs is the total seconds and count of the WAL group commits (write and
// fsync) of a vispyr process so far, every WAL summed; NaN when it has none.
func walSyncs(admin string) (seconds, count float64) {
	sum, err := metricSum(admin, "vispyr_wal_fsync_duration_seconds_sum")
	if err != nil {
		return math.NaN(), math.NaN()
	}
	n, err := metricSum(admin, "vispyr_wal_fsync_duration_seconds_count")
	if err != nil {
		return math.NaN(), math.NaN()
	}
	return sum, n
}
