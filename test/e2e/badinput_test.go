package e2e

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/prompb"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// zeros is an endless reader of zero bytes, to send huge bodies without
// holding them in memory.
type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// Bad requests get a clear 4xx that names the problem, and Vispyr keeps
// serving: after each one a valid write is still acknowledged.
func TestBadInputIsRejectedClearly(t *testing.T) {
	t.Parallel()
	v := harness.Start(t, harness.Options{})
	client := &http.Client{Timeout: 30 * time.Second}

	valid, err := harness.EncodeWriteRequest(&prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
		Labels:  harness.Labels("__name__", "e2e_bad_input_ok", "k", "v"),
		Samples: []prompb.Sample{{Timestamp: time.Now().UnixMilli(), Value: 1}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	garbage := bytes.Repeat([]byte{0xff, 0x13, 0x07, 0x99}, 64)
	// A snappy block whose header claims 2 GiB decoded: a decoder that
	// trusts it would allocate 2 GiB.
	bomb := binary.AppendUvarint(nil, 2<<30)
	bomb = append(bomb, 0x00, 'x')

	type request struct {
		name        string
		method      string
		url         string
		contentType string
		encoding    string
		body        io.Reader
		size        int64
		wantStatus  []int
		wantText    []string // the body must contain one of these (case-insensitive)
		apiError    bool     // a Prometheus API error envelope with errorType bad_data
	}
	rw := v.MetricsURL("/api/v1/write")
	cases := []request{
		{name: "truncated snappy", url: rw, body: bytes.NewReader(valid[:len(valid)/2]),
			wantStatus: []int{400}, wantText: []string{"snappy", "decompress", "corrupt"}},
		{name: "snappy length bomb", url: rw, body: bytes.NewReader(bomb),
			wantStatus: []int{400, 413}, wantText: []string{"snappy", "decompress", "corrupt", "too large", "size"}},
		{name: "garbage protobuf", url: rw, body: bytes.NewReader(snappy.Encode(nil, garbage)),
			wantStatus: []int{400}, wantText: []string{"proto", "unmarshal", "decode"}},
		{name: "uncompressed protobuf", url: rw, encoding: "-", body: bytes.NewReader(garbage),
			wantStatus: []int{400, 415}, wantText: []string{"snappy", "encoding", "decompress"}},
		{name: "wrong content type", url: rw, contentType: "application/json", body: bytes.NewReader(valid),
			wantStatus: []int{415}, wantText: []string{"content-type", "content type", "media type", "application/json"}},
		{name: "wrong content encoding", url: rw, encoding: "gzip", body: bytes.NewReader(valid),
			wantStatus: []int{415, 400}, wantText: []string{"encoding", "gzip", "snappy"}},
		{name: "oversized body", url: rw, body: io.LimitReader(zeros{}, 1<<30), size: 1 << 30,
			wantStatus: []int{413}, wantText: []string{"too large", "limit", "size"}},
		{name: "oversized chunked body", url: rw, body: io.LimitReader(zeros{}, 100<<20),
			wantStatus: []int{413}, wantText: []string{"too large", "limit", "size"}},
		{name: "alias path garbage", url: v.MetricsURL("/api/v1/metrics/write"), body: bytes.NewReader(snappy.Encode(nil, garbage)),
			wantStatus: []int{400}, wantText: []string{"proto", "unmarshal", "decode"}},
		{name: "otlp http garbage", url: v.OTLPHTTPURL("/v1/metrics"), contentType: "application/x-protobuf", encoding: "-",
			body: bytes.NewReader(garbage), wantStatus: []int{400}, wantText: []string{"proto", "unmarshal", "decode", "parse"}},
		{name: "otlp http bad json", url: v.OTLPHTTPURL("/v1/metrics"), contentType: "application/json", encoding: "-",
			body: strings.NewReader(`{"resourceMetrics": [`), wantStatus: []int{400}, wantText: []string{"json", "unmarshal", "decode", "parse", "eof"}},
		{name: "invalid promql", method: http.MethodGet, url: v.MetricsURL("/api/v1/query?query=sum(rate(x[5m])"),
			wantStatus: []int{400}, wantText: []string{"parse", "unclosed", "unexpected"}, apiError: true},
		{name: "invalid time", method: http.MethodGet, url: v.MetricsURL("/api/v1/query?query=up&time=yesterday"),
			wantStatus: []int{400}, wantText: []string{"time", "parse"}, apiError: true},
		{name: "query_range step zero", method: http.MethodGet, url: v.MetricsURL("/api/v1/query_range?query=up&start=1&end=100&step=0"),
			wantStatus: []int{400}, wantText: []string{"step", "positive", "zero"}, apiError: true},
		{name: "unknown endpoint", method: http.MethodGet, url: v.MetricsURL("/api/v1/no_such_endpoint"),
			wantStatus: []int{404}, wantText: []string{"not found", "404", "unknown"}},
	}
	for _, c := range cases {
		t.Run(strings.ReplaceAll(c.name, " ", "_"), func(t *testing.T) {
			if c.method == "" {
				c.method = http.MethodPost
			}
			req, err := http.NewRequest(c.method, c.url, c.body)
			if err != nil {
				t.Fatal(err)
			}
			if c.size > 0 {
				req.ContentLength = c.size
			}
			if c.method == http.MethodPost {
				ct, enc := c.contentType, c.encoding
				if ct == "" {
					ct = "application/x-protobuf"
				}
				if enc == "" {
					enc = "snappy"
				}
				req.Header.Set("Content-Type", ct)
				if enc != "-" {
					req.Header.Set("Content-Encoding", enc)
				}
				req.Header.Set("X-Prometheus-Remote-Write-Version", "0.1.0")
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("%s: no response: %v", c.name, err)
			}
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
			statusOK := false
			for _, s := range c.wantStatus {
				statusOK = statusOK || resp.StatusCode == s
			}
			if !statusOK {
				t.Errorf("%s: status %d, want one of %v; body %q", c.name, resp.StatusCode, c.wantStatus, body)
			}
			lower := strings.ToLower(string(body))
			textOK := false
			for _, w := range c.wantText {
				textOK = textOK || strings.Contains(lower, w)
			}
			if !textOK {
				t.Errorf("%s: body %q does not say what is wrong (want one of %q)", c.name, body, c.wantText)
			}

			if c.apiError {
				var env struct{ Status, ErrorType, Error string }
				if err := json.Unmarshal(body, &env); err != nil || env.Status != "error" || env.ErrorType != "bad_data" {
					t.Errorf("%s: body %q, want a JSON error envelope with errorType bad_data", c.name, body)
				}
			}

			// Still serving: a valid write is acknowledged.
			v.CheckServing(t)
			res, err := harness.PostRemoteWrite(client, rw, valid, nil)
			if err != nil || res.Status != http.StatusNoContent {
				t.Fatalf("valid write after %s: %v %d %s", c.name, err, res.Status, res.Body)
			}
		})
	}
}
