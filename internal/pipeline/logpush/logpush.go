// Package logpush is the data that flows between the log receivers (Loki push,
// OTLP logs, Faro) and what stands behind them (the log store, a forwarder):
// Loki-shaped streams of lines, each line with its structured metadata. Loki push
// decodes straight into it and OTLP is converted once (FromOTLP), so no receiver
// converts twice.
package logpush

import "github.com/prometheus/prometheus/model/labels"

// Well-known label and structured-metadata names, as Loki 3 spells them.
const (
	LabelServiceName   = "service_name"
	UnknownService     = "unknown_service"
	MetaDetectedLevel  = "detected_level"
	MetaTraceID        = "trace_id"
	MetaSpanID         = "span_id"
	DefaultLevelString = "unknown"
)

// Request is one decoded push: streams of entries for one tenant.
type Request struct {
	Streams []Stream
}

// Stream is the entries of one label set. Labels are sorted (labels.Labels keeps
// them so) and exclude structured metadata.
type Stream struct {
	Labels  labels.Labels
	Entries []Entry
}

// Entry is one log line.
type Entry struct {
	Timestamp int64  // Unix nanoseconds
	Line      string // the log line as sent
	// Metadata is the line's structured metadata: what Loki keeps beside the line
	// without indexing it (trace_id, span_id, detected_level, OTLP log attributes).
	Metadata labels.Labels
}

// Lines returns how many entries r holds.
func (r *Request) Lines() int {
	n := 0
	for i := range r.Streams {
		n += len(r.Streams[i].Entries)
	}
	return n
}

// Bytes returns the size of r's lines and metadata, as Loki counts a push against
// its rate limit.
func (r *Request) Bytes() int {
	n := 0
	for i := range r.Streams {
		for _, e := range r.Streams[i].Entries {
			n += len(e.Line)
			e.Metadata.Range(func(l labels.Label) { n += len(l.Name) + len(l.Value) })
		}
	}
	return n
}
