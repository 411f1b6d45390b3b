// Package loki receives Loki's push API: POST /loki/api/v1/push, in protobuf
// (snappy-compressed) or JSON (optionally gzip-compressed), with structured
// metadata. It decodes straight into logpush.Request for a pipeline.Logs.
package loki

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

// decodeProto decodes Loki's PushRequest message (after snappy):
//
//	PushRequest   { repeated Stream streams = 1; }
//	Stream        { string labels = 1; repeated Entry entries = 2; uint64 hash = 3; }
//	Entry         { Timestamp timestamp = 1; string line = 2; repeated LabelPair structuredMetadata = 3; }
//	Timestamp     { int64 seconds = 1; int32 nanos = 2; }
//	LabelPair     { string name = 1; string value = 2; }
func decodeProto(b []byte) (*logpush.Request, error) {
	req := &logpush.Request{}
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		if num != 1 || typ != protowire.BytesType {
			return nil
		}
		s, err := decodeStream(v)
		if err != nil {
			return err
		}
		req.Streams = append(req.Streams, s)
		return nil
	})
	return req, err
}

func decodeStream(b []byte) (logpush.Stream, error) {
	var s logpush.Stream
	var lbls string
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			lbls = string(v)
		case num == 2 && typ == protowire.BytesType:
			e, err := decodeEntry(v)
			if err != nil {
				return err
			}
			s.Entries = append(s.Entries, e)
		}
		return nil
	})
	if err != nil {
		return s, err
	}
	s.Labels, err = parseLabels(lbls)
	return s, err
}

func decodeEntry(b []byte) (logpush.Entry, error) {
	var e logpush.Entry
	var meta []labels.Label
	err := fields(b, func(num protowire.Number, typ protowire.Type, v []byte, _ uint64) error {
		switch {
		case num == 1 && typ == protowire.BytesType:
			var sec, nsec int64
			err := fields(v, func(n protowire.Number, t protowire.Type, _ []byte, x uint64) error {
				if t == protowire.VarintType {
					switch n {
					case 1:
						sec = int64(x)
					case 2:
						nsec = int64(int32(x))
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			e.Timestamp = sec*1e9 + nsec
		case num == 2 && typ == protowire.BytesType:
			e.Line = string(v)
		case num == 3 && typ == protowire.BytesType:
			var l labels.Label
			err := fields(v, func(n protowire.Number, t protowire.Type, x []byte, _ uint64) error {
				if t == protowire.BytesType {
					switch n {
					case 1:
						l.Name = string(x)
					case 2:
						l.Value = string(x)
					}
				}
				return nil
			})
			if err != nil {
				return err
			}
			meta = append(meta, l)
		}
		return nil
	})
	e.Metadata = labels.New(meta...)
	return e, err
}

var errMalformed = errors.New("malformed protobuf")

// fields walks the fields of one protobuf message, handing each to fn with its
// bytes (length-delimited) or value (varint, fixed).
func fields(b []byte, fn func(protowire.Number, protowire.Type, []byte, uint64) error) error {
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		var v []byte
		var x uint64
		switch typ {
		case protowire.BytesType:
			v, n = protowire.ConsumeBytes(b)
		case protowire.VarintType:
			x, n = protowire.ConsumeVarint(b)
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return errMalformed
		}
		b = b[n:]
		if err := fn(num, typ, v, x); err != nil {
			return err
		}
	}
	return nil
}

var promParser = parser.NewParser(parser.Options{})

// parseLabels parses a stream's label string, `{app="x", env="prod"}`.
func parseLabels(s string) (labels.Labels, error) {
	ls, err := promParser.ParseMetric(s)
	if err != nil {
		return labels.EmptyLabels(), fmt.Errorf("error parsing labels '%s' with error: %v", s, err)
	}
	return ls, nil
}

// jsonPush is Loki's JSON push body.
type jsonPush struct {
	Streams []struct {
		Stream map[string]string   `json:"stream"`
		Values [][]json.RawMessage `json:"values"`
	} `json:"streams"`
}

// decodeJSON decodes {"streams":[{"stream":{...},"values":[["<ns>","<line>",{meta}]]}]}.
func decodeJSON(b []byte) (*logpush.Request, error) {
	var p jsonPush
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	req := &logpush.Request{Streams: make([]logpush.Stream, 0, len(p.Streams))}
	for _, js := range p.Streams {
		s := logpush.Stream{Labels: labels.FromMap(js.Stream)}
		for _, v := range js.Values {
			if len(v) < 2 || len(v) > 3 {
				return nil, fmt.Errorf("a log entry has %d values, want 2 or 3 ([timestamp, line, structured metadata])", len(v))
			}
			var tsStr, line string
			if err := json.Unmarshal(v[0], &tsStr); err != nil {
				return nil, fmt.Errorf("timestamp: %w", err)
			}
			ts, err := strconv.ParseInt(tsStr, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("timestamp %q: want Unix nanoseconds as a string", tsStr)
			}
			if err := json.Unmarshal(v[1], &line); err != nil {
				return nil, fmt.Errorf("line: %w", err)
			}
			e := logpush.Entry{Timestamp: ts, Line: line}
			if len(v) == 3 {
				var meta map[string]string
				if err := json.Unmarshal(v[2], &meta); err != nil {
					return nil, fmt.Errorf("structured metadata: %w", err)
				}
				e.Metadata = labels.FromMap(meta)
			}
			s.Entries = append(s.Entries, e)
		}
		req.Streams = append(req.Streams, s)
	}
	return req, nil
}

// legacyPush is the JSON body of Loki's legacy push path, /api/prom/push:
// the protobuf message's shape, labels as a string and RFC 3339 timestamps.
// Clients built on Loki's push types (loki-client-go's JSON mode) send it.
type legacyPush struct {
	Streams []struct {
		Labels  string `json:"labels"`
		Entries []struct {
			TS       time.Time         `json:"ts"`
			Line     string            `json:"line"`
			Metadata map[string]string `json:"structuredMetadata"`
		} `json:"entries"`
	} `json:"streams"`
}

// decodeLegacyJSON decodes {"streams":[{"labels":"{a=\"b\"}","entries":[{"ts":"<RFC 3339>","line":"..."}]}]}.
func decodeLegacyJSON(b []byte) (*logpush.Request, error) {
	var p legacyPush
	if err := json.Unmarshal(b, &p); err != nil {
		return nil, err
	}
	req := &logpush.Request{Streams: make([]logpush.Stream, 0, len(p.Streams))}
	for _, js := range p.Streams {
		ls, err := parseLabels(js.Labels)
		if err != nil {
			return nil, err
		}
		s := logpush.Stream{Labels: ls, Entries: make([]logpush.Entry, 0, len(js.Entries))}
		for _, e := range js.Entries {
			s.Entries = append(s.Entries, logpush.Entry{Timestamp: e.TS.UnixNano(), Line: e.Line, Metadata: labels.FromMap(e.Metadata)})
		}
		req.Streams = append(req.Streams, s)
	}
	return req, nil
}
