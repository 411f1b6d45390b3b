// Package remotewrite is what flows between the Prometheus remote-write receiver and
// what stands behind it (the metrics store, a forwarder): a remote-write request
// (v1 or v2) decoded without allocating per sample, with its series, samples,
// native histograms, exemplars and v2 metadata, plus the protobuf body it came from.
package remotewrite

import (
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Written is what a consumer stored of one request: the counts remote write 2.0
// answers in its X-Prometheus-Remote-Write-*-Written headers.
type Written struct {
	Samples, Histograms, Exemplars int
}

// V2 reports whether the request is remote write 2.0 (symbols and label refs).
func (r *Request) V2() bool { return r.v2 }

// Raw is the protobuf body the request was decoded from (snappy-decompressed), for
// a forwarder that passes requests on as they came.
func (r *Request) Raw() []byte { return r.raw }

// Snappy is the body as it came, snappy-compressed, when the receiver set it
// (SetSnappy): a forwarder queues it as it is instead of compressing Raw again.
func (r *Request) Snappy() []byte { return r.snappy }

// SetSnappy records the compressed body that Raw was decoded from; Decode
// clears it.
func (r *Request) SetSnappy(b []byte) { r.snappy = b }

// Len is the number of series.
func (r *Request) Len() int { return len(r.series) }

// Symbols is the v2 symbol table that LabelRefs, exemplar and metadata refs index.
func (r *Request) Symbols() []string { return r.symbols }

// Key identifies series i by its wire bytes: the raw label fields for v1 (nil when
// other fields interrupt them), nil for v2 (whose key is built from LabelRefs).
// Identical keys always decode to identical labels.
func (r *Request) Key(i int) []byte {
	s := &r.series[i]
	if s.key == s.keyEnd {
		return nil
	}
	return r.raw[s.key:s.keyEnd:s.keyEnd]
}

// Field is the whole Timeseries field of v1 series i as it came (tag,
// length, message; nil for v2): fields concatenated form a v1 WriteRequest,
// so a forwarder can regroup series without encoding them again.
func (r *Request) Field(i int) []byte {
	s := &r.series[i]
	if r.v2 {
		return nil
	}
	return r.raw[s.field:s.fieldEnd:s.fieldEnd]
}

// Labels returns the v1 labels of series i as sent (unsorted, unvalidated),
// decoding them on first use; a malformed label field is an error.
func (r *Request) Labels(i int) ([]Label, error) { return r.labelsOf(&r.series[i]) }

// LabelRefs returns the v2 label refs of series i: name, value, name, value, … as
// indexes into Symbols (not yet checked against it).
func (r *Request) LabelRefs(i int) []uint32 {
	s := &r.series[i]
	if !r.v2 {
		return nil
	}
	return r.refs[s.lbl:s.lblEnd]
}

// Samples returns the float samples of series i.
func (r *Request) Samples(i int) []Sample {
	s := &r.series[i]
	return r.samples[s.smp:s.smpEnd]
}

// HistogramsV1 returns the native histograms of v1 series i.
func (r *Request) HistogramsV1(i int) []prompb.Histogram {
	s := &r.series[i]
	if r.v2 {
		return nil
	}
	return r.hists1[s.hist:s.histEnd]
}

// ExemplarsV1 returns the exemplars of v1 series i.
func (r *Request) ExemplarsV1(i int) []prompb.Exemplar {
	s := &r.series[i]
	if r.v2 {
		return nil
	}
	return r.exs1[s.ex:s.exEnd]
}

// HistogramsV2 returns the native histograms of v2 series i.
func (r *Request) HistogramsV2(i int) []writev2.Histogram {
	s := &r.series[i]
	if !r.v2 {
		return nil
	}
	return r.hists2[s.hist:s.histEnd]
}

// ExemplarsV2 returns the exemplars of v2 series i.
func (r *Request) ExemplarsV2(i int) []writev2.Exemplar {
	s := &r.series[i]
	if !r.v2 {
		return nil
	}
	return r.exs2[s.ex:s.exEnd]
}

// Metadata returns the v2 metadata of series i (v1 metadata is per metric
// family: MetadataV1).
func (r *Request) Metadata(i int) writev2.Metadata {
	if !r.v2 {
		return writev2.Metadata{}
	}
	return r.metas[i]
}

// MetadataV1 is the v1 request's metadata fields as they came: the protobuf
// body of a WriteRequest holding only that metadata (empty when none).
// Prometheus's receiver drops it; a forwarder passes it on.
func (r *Request) MetadataV1() []byte { return r.metaV1 }

// LabelSet builds the sorted labels of series i (v1 or v2) with sb; the result
// is a copy that may be kept. It does not validate names or values.
func (r *Request) LabelSet(i int, sb *labels.ScratchBuilder) (labels.Labels, error) {
	if r.v2 {
		return writev2.TimeSeries{LabelsRefs: r.LabelRefs(i)}.ToLabels(sb, r.symbols)
	}
	raw, err := r.Labels(i)
	if err != nil {
		return labels.EmptyLabels(), err
	}
	sb.Reset()
	for _, l := range raw {
		sb.Add(l.Name, l.Value)
	}
	sb.Sort()
	return sb.Labels(), nil
}
