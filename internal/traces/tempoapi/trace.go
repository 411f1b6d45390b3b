package tempoapi

import (
	"bytes"
	"encoding/hex"
	"net/http"
	"strings"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"
)

// parseTraceID accepts 1 to 32 hex digits (Tempo left-pads short IDs with zeros).
func parseTraceID(s string) ([16]byte, error) {
	var id [16]byte
	s = strings.TrimSpace(s)
	if len(s) == 0 || len(s) > 32 {
		return id, badf("invalid trace ID %q: want 1 to 32 hex digits", s)
	}
	padded := strings.Repeat("0", 32-len(s)) + s
	if _, err := hex.Decode(id[:], []byte(padded)); err != nil {
		return id, badf("invalid trace ID %q: not hexadecimal", s)
	}
	if id == [16]byte{} {
		return id, badf("invalid trace ID %q: all zero", s)
	}
	return id, nil
}

func wantsProto(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "application/protobuf")
}

func (a *api) findTrace(w http.ResponseWriter, r *http.Request) (ptrace.Traces, bool) {
	id, err := parseTraceID(r.PathValue("id"))
	if err != nil {
		a.fail(w, r, err)
		return ptrace.Traces{}, false
	}
	start, end, err := timeRange(r)
	if err != nil {
		a.fail(w, r, err)
		return ptrace.Traces{}, false
	}
	td, ok, err := a.store.FindTrace(r.Context(), tenant(r), id, start, end)
	if err != nil {
		a.fail(w, r, err)
		return ptrace.Traces{}, false
	}
	if !ok {
		http.Error(w, "trace not found", http.StatusNotFound)
		return ptrace.Traces{}, false
	}
	return td, true
}

// traceV1 answers tempopb.Trace, which is wire-identical to OTLP TracesData. Its JSON
// form names the resource spans "batches", as Tempo's does.
func (a *api) traceV1(w http.ResponseWriter, r *http.Request) {
	td, ok := a.findTrace(w, r)
	if !ok {
		return
	}
	if wantsProto(r) {
		b, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		w.Header().Set("Content-Type", "application/protobuf")
		w.Write(b)
		return
	}
	body, err := otlpJSON(td)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(bytes.Replace(body, []byte(`{"resourceSpans":`), []byte(`{"batches":`), 1))
}

// traceV2 answers tempopb.TraceByIDResponse{trace=1, status=3}: the OTLP trace as
// field 1, status COMPLETE (the proto3 default, so absent on the wire).
func (a *api) traceV2(w http.ResponseWriter, r *http.Request) {
	td, ok := a.findTrace(w, r)
	if !ok {
		return
	}
	if wantsProto(r) {
		inner, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		b := protowire.AppendTag(make([]byte, 0, len(inner)+8), 1, protowire.BytesType)
		b = protowire.AppendBytes(b, inner)
		w.Header().Set("Content-Type", "application/protobuf")
		w.Write(b)
		return
	}
	body, err := otlpJSON(td)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	var out bytes.Buffer
	out.WriteString(`{"trace":`)
	out.Write(body)
	out.WriteString(`,"status":"COMPLETE"}`)
	w.Write(out.Bytes())
}

// otlpJSON is OTLP JSON with hex trace and span IDs.
func otlpJSON(td ptrace.Traces) ([]byte, error) {
	return (&ptrace.JSONMarshaler{}).MarshalTraces(td)
}
