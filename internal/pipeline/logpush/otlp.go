package logpush

import (
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/prometheus/model/labels"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// indexedResourceAttributes are the resource attributes Loki 3 turns into stream
// labels by default (its default_resource_attributes_as_index_labels); every
// other attribute becomes structured metadata.
var indexedResourceAttributes = map[string]bool{
	"service.name": true, "service.namespace": true, "service.instance.id": true,
	"deployment.environment": true, "deployment.environment.name": true,
	"cloud.region": true, "cloud.availability_zone": true,
	"k8s.cluster.name": true, "k8s.namespace.name": true, "k8s.pod.name": true,
	"k8s.container.name": true, "container.name": true, "k8s.replicaset.name": true,
	"k8s.deployment.name": true, "k8s.statefulset.name": true, "k8s.daemonset.name": true,
	"k8s.cronjob.name": true, "k8s.job.name": true,
}

// FromOTLP converts OTLP logs to streams as Loki 3's OTLP endpoint does: the
// indexed resource attributes become labels (dots as underscores), the body the
// line, and the rest (other resource attributes, scope name/version/attributes,
// log attributes, trace_id, span_id, severity_text, severity_number, flags)
// structured metadata. A record without a timestamp takes its observed time,
// else now.
func FromOTLP(ld plog.Logs) *Request {
	req := &Request{}
	now := time.Now().UnixNano()
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		lb := labels.NewBuilder(labels.EmptyLabels())
		var resMeta []labels.Label
		rl.Resource().Attributes().Range(func(k string, v pcommon.Value) bool {
			if indexedResourceAttributes[k] {
				lb.Set(normalizeName(k), v.AsString())
			} else {
				resMeta = append(resMeta, labels.Label{Name: normalizeName(k), Value: v.AsString()})
			}
			return true
		})
		ls := lb.Labels()
		if !ls.Has(LabelServiceName) {
			ls = labels.NewBuilder(ls).Set(LabelServiceName, UnknownService).Labels()
		}
		stream := Stream{Labels: ls}
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			scopeMeta := append([]labels.Label(nil), resMeta...)
			if n := sl.Scope().Name(); n != "" {
				scopeMeta = append(scopeMeta, labels.Label{Name: "scope_name", Value: n})
			}
			if v := sl.Scope().Version(); v != "" {
				scopeMeta = append(scopeMeta, labels.Label{Name: "scope_version", Value: v})
			}
			sl.Scope().Attributes().Range(func(k string, v pcommon.Value) bool {
				scopeMeta = append(scopeMeta, labels.Label{Name: normalizeName(k), Value: v.AsString()})
				return true
			})
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				stream.Entries = append(stream.Entries, entryFromRecord(lrs.At(k), scopeMeta, now))
			}
		}
		if len(stream.Entries) > 0 {
			req.Streams = append(req.Streams, stream)
		}
	}
	return req
}

func entryFromRecord(lr plog.LogRecord, scopeMeta []labels.Label, now int64) Entry {
	ts := int64(lr.Timestamp())
	if ts == 0 {
		ts = int64(lr.ObservedTimestamp())
	}
	if ts == 0 {
		ts = now
	}
	b := labels.NewBuilder(labels.New(scopeMeta...))
	lr.Attributes().Range(func(k string, v pcommon.Value) bool {
		b.Set(normalizeName(k), v.AsString())
		return true
	})
	if id := lr.TraceID(); !id.IsEmpty() {
		b.Set(MetaTraceID, id.String())
	}
	if id := lr.SpanID(); !id.IsEmpty() {
		b.Set(MetaSpanID, id.String())
	}
	if s := lr.SeverityText(); s != "" {
		b.Set("severity_text", s)
	}
	if n := lr.SeverityNumber(); n != 0 {
		b.Set("severity_number", strconv.Itoa(int(n)))
	}
	if f := lr.Flags(); f != 0 {
		b.Set("flags", strconv.Itoa(int(f)))
	}
	return Entry{Timestamp: ts, Line: lr.Body().AsString(), Metadata: b.Labels()}
}

// normalizeName turns an attribute name into a label name as Loki does: every
// character outside [a-zA-Z0-9_] becomes '_', and a leading digit gets a '_'.
func normalizeName(k string) string {
	var sb strings.Builder
	for i, r := range k {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r == '_':
			sb.WriteRune(r)
		case r >= '0' && r <= '9':
			if i == 0 {
				sb.WriteByte('_')
			}
			sb.WriteRune(r)
		default:
			sb.WriteByte('_')
		}
	}
	return sb.String()
}
