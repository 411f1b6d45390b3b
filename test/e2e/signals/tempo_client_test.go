package signals

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// tempo is what Grafana's Tempo datasource calls, reduced to what these tests read.
type tempo struct{ base string }

type searchResponse struct {
	Traces []struct {
		TraceID         string `json:"traceID"`
		RootServiceName string `json:"rootServiceName"`
		RootTraceName   string `json:"rootTraceName"`
	} `json:"traces"`
}

func (c tempo) search(t *testing.T, q string) searchResponse {
	t.Helper()
	resp, err := http.Get(c.base + "/api/search?limit=100&q=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("search %q: %d %s", q, resp.StatusCode, body)
	}
	var sr searchResponse
	if err := json.Unmarshal(body, &sr); err != nil {
		t.Fatalf("search %q: decode %s: %v", q, body, err)
	}
	return sr
}

// getProto fetches path with Accept: application/protobuf, as Grafana does.
func (c tempo) getProto(path string) ([]byte, int, error) {
	req, _ := http.NewRequest(http.MethodGet, c.base+path, nil)
	req.Header.Set("Accept", "application/protobuf")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return nil, resp.StatusCode, fmt.Errorf("%s", body)
	}
	return body, resp.StatusCode, nil
}

// traceV2 fetches a trace as Grafana does first: /api/v2/traces/<id> in protobuf,
// a TraceByIDResponse whose field 1 is a Trace, wire-identical to OTLP TracesData.
func (c tempo) traceV2(id string) (ptrace.Traces, int, error) {
	body, code, err := c.getProto("/api/v2/traces/" + id)
	if err != nil {
		return ptrace.Traces{}, code, err
	}
	var traceBytes []byte
	for b := body; len(b) > 0; {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return ptrace.Traces{}, code, fmt.Errorf("bad TraceByIDResponse")
		}
		b = b[n:]
		if num == 1 && typ == protowire.BytesType {
			v, m := protowire.ConsumeBytes(b)
			if m < 0 {
				return ptrace.Traces{}, code, fmt.Errorf("bad trace field")
			}
			traceBytes = v
		}
		m := protowire.ConsumeFieldValue(num, typ, b)
		if m < 0 {
			return ptrace.Traces{}, code, fmt.Errorf("bad field %d", num)
		}
		b = b[m:]
	}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(traceBytes)
	return td, code, err
}

// traceV1 fetches /api/traces/<id> in protobuf: a bare Trace.
func (c tempo) traceV1(id string) (ptrace.Traces, int, error) {
	body, code, err := c.getProto("/api/traces/" + id)
	if err != nil {
		return ptrace.Traces{}, code, err
	}
	td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(body)
	return td, code, err
}
