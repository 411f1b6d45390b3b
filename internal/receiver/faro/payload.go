package faro

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// payload is the body the Faro Web SDK posts to /collect: items of four kinds,
// the metadata they share, and the browser's spans as OTLP JSON.
type payload struct {
	Exceptions   []exception     `json:"exceptions"`
	Logs         []logItem       `json:"logs"`
	Measurements []measurement   `json:"measurements"`
	Events       []event         `json:"events"`
	Meta         meta            `json:"meta"`
	Traces       json.RawMessage `json:"traces"`
}

type traceContext struct {
	TraceID string `json:"trace_id"`
	SpanID  string `json:"span_id"`
}

type frame struct {
	Function string `json:"function"`
	Module   string `json:"module"`
	Filename string `json:"filename"`
	Lineno   int    `json:"lineno"`
	Colno    int    `json:"colno"`
}

type exception struct {
	Type       string `json:"type"`
	Value      string `json:"value"`
	Stacktrace *struct {
		Frames []frame `json:"frames"`
	} `json:"stacktrace"`
	Timestamp time.Time    `json:"timestamp"`
	Trace     traceContext `json:"trace"`
	Context   stringMap    `json:"context"`
}

type logItem struct {
	Message   string       `json:"message"`
	Level     string       `json:"level"`
	Context   stringMap    `json:"context"`
	Timestamp time.Time    `json:"timestamp"`
	Trace     traceContext `json:"trace"`
}

type measurement struct {
	Type      string             `json:"type"`
	Values    map[string]float64 `json:"values"`
	Timestamp time.Time          `json:"timestamp"`
	Trace     traceContext       `json:"trace"`
	Context   stringMap          `json:"context"`
}

type event struct {
	Name       string       `json:"name"`
	Domain     string       `json:"domain"`
	Attributes stringMap    `json:"attributes"`
	Timestamp  time.Time    `json:"timestamp"`
	Trace      traceContext `json:"trace"`
}

type meta struct {
	SDK struct {
		Name         string `json:"name"`
		Version      string `json:"version"`
		Integrations []struct {
			Name    string `json:"name"`
			Version string `json:"version"`
		} `json:"integrations"`
	} `json:"sdk"`
	App struct {
		Name        string `json:"name"`
		Namespace   string `json:"namespace"`
		Release     string `json:"release"`
		Version     string `json:"version"`
		Environment string `json:"environment"`
	} `json:"app"`
	User struct {
		Email      string    `json:"email"`
		ID         string    `json:"id"`
		Username   string    `json:"username"`
		Attributes stringMap `json:"attributes"`
	} `json:"user"`
	Session struct {
		ID         string    `json:"id"`
		Attributes stringMap `json:"attributes"`
	} `json:"session"`
	Page struct {
		ID         string    `json:"id"`
		URL        string    `json:"url"`
		Attributes stringMap `json:"attributes"`
	} `json:"page"`
	Browser struct {
		Name           string `json:"name"`
		Version        string `json:"version"`
		OS             string `json:"os"`
		Mobile         bool   `json:"mobile"`
		UserAgent      string `json:"userAgent"`
		Language       string `json:"language"`
		ViewportWidth  string `json:"viewportWidth"`
		ViewportHeight string `json:"viewportHeight"`
	} `json:"browser"`
	View struct {
		Name string `json:"name"`
	} `json:"view"`
}

// stringMap is a context or attribute map. The SDK types them as strings, but
// applications put numbers and booleans in them too: those are kept as their
// JSON text instead of failing the whole payload; objects and arrays likewise.
type stringMap map[string]string

func (m *stringMap) UnmarshalJSON(b []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	*m = make(stringMap, len(raw))
	for k, v := range raw {
		var s string
		if err := json.Unmarshal(v, &s); err == nil {
			(*m)[k] = s
			continue
		}
		if string(v) == "null" {
			continue
		}
		(*m)[k] = string(bytes.TrimSpace(v))
	}
	return nil
}

// decoded is a payload with its traces parsed.
type decoded struct {
	payload
	traces ptrace.Traces
}

// decode parses a /collect body. Errors name what was wrong, for a 400.
func decode(body []byte) (*decoded, error) {
	var d decoded
	if err := json.Unmarshal(body, &d.payload); err != nil {
		return nil, fmt.Errorf("decode faro payload: %w", err)
	}
	if len(d.Traces) > 0 && string(d.Traces) != "null" {
		td, err := (&ptrace.JSONUnmarshaler{}).UnmarshalTraces(d.Traces)
		if err != nil {
			return nil, fmt.Errorf("decode faro payload traces: %w", err)
		}
		d.traces = td
	} else {
		d.traces = ptrace.NewTraces()
	}
	return &d, nil
}
