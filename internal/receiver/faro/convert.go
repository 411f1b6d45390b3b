package faro

import (
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

// Labels every Faro line's stream gets, besides service_name (the app's name)
// and logs.extra_log_labels.
const (
	labelAppName = "app_name"
	labelKind    = "kind"
)

// lines turns a payload's items into log lines, one stream per label set:
// logs, exceptions, measurements then events, each item's fields followed by
// the payload's metadata, as Alloy's faro.receiver writes them. Lines are
// stamped now (as Alloy does): browser clocks are not to be trusted.
func (h *Handler) lines(p *payload, now int64) *logpush.Request {
	meta := p.Meta.keyVals()
	type item struct {
		kv    *keyVals
		trace traceContext
		level string
	}
	var items []item
	for _, l := range p.Logs {
		items = append(items, item{l.keyVals(), l.Trace, ""})
	}
	for _, e := range p.Exceptions {
		items = append(items, item{e.keyVals(), e.Trace, "error"})
	}
	for _, m := range p.Measurements {
		items = append(items, item{m.keyVals(), m.Trace, ""})
	}
	for _, e := range p.Events {
		items = append(items, item{e.keyVals(), e.Trace, ""})
	}
	req := &logpush.Request{}
	byLabels := map[uint64]int{}
	for _, it := range items {
		it.kv.merge(meta)
		line := it.kv.logfmt()
		if h.cfg.LogFormat == FormatJSON {
			line = it.kv.json()
		}
		ls := h.labels(it.kv)
		e := logpush.Entry{Timestamp: now, Line: line, Metadata: entryMetadata(it.trace, it.level)}
		k := ls.Hash()
		i, ok := byLabels[k]
		if !ok {
			i = len(req.Streams)
			byLabels[k] = i
			req.Streams = append(req.Streams, logpush.Stream{Labels: ls})
		}
		req.Streams[i].Entries = append(req.Streams[i].Entries, e)
	}
	return req
}

// labels are a line's stream labels: app_name, kind, service_name and the
// configured extra labels (an empty one takes the line's value of that key).
func (h *Handler) labels(kv *keyVals) labels.Labels {
	b := labels.NewScratchBuilder(4 + len(h.cfg.ExtraLogLabels))
	app := kv.get("app_name")
	if app != "" {
		b.Add(labelAppName, app)
		b.Add(logpush.LabelServiceName, app)
	} else {
		b.Add(logpush.LabelServiceName, logpush.UnknownService)
	}
	b.Add(labelKind, kv.get("kind"))
	for name, v := range h.cfg.ExtraLogLabels {
		if name == labelAppName || name == labelKind || name == logpush.LabelServiceName {
			continue
		}
		if v == "" {
			v = kv.get(name)
		}
		if v != "" {
			b.Add(name, v)
		}
	}
	b.Sort()
	return b.Labels()
}

// entryMetadata keeps the item's trace context as structured metadata, so a
// browser log line links to its trace as an OTLP one does.
func entryMetadata(tc traceContext, level string) labels.Labels {
	b := labels.NewScratchBuilder(3)
	if level != "" {
		b.Add(logpush.MetaDetectedLevel, level)
	}
	if tc.SpanID != "" {
		b.Add(logpush.MetaSpanID, tc.SpanID)
	}
	if tc.TraceID != "" {
		b.Add(logpush.MetaTraceID, tc.TraceID)
	}
	b.Sort()
	return b.Labels()
}
