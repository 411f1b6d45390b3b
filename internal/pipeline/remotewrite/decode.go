package remotewrite

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/prometheus/prometheus/prompb"
	writev2 "github.com/prometheus/prometheus/prompb/io/prometheus/write/v2"
)

// Request is one decoded remote-write request (v1 or v2). Strings point into the
// decompressed body and the slices are reused across requests, so decoding a
// request of known shape allocates nothing; anything kept beyond the request
// (labels of new series, exemplar labels) is copied by labels.ScratchBuilder.
//
// Series are addressed by index, 0 ≤ i < Len(). A Request is not safe for
// concurrent use (v1 labels are decoded lazily, into the request).
type Request struct {
	v2      bool
	raw     []byte
	snappy  []byte   // raw compressed, as it came (SetSnappy)
	symbols []string // v2 symbol table
	series  []series
	metas   []writev2.Metadata // v2 metadata of every series
	labels  []Label            // v1 labels of every series
	refs    []uint32           // v2 label refs of every series
	samples []Sample

	// Rarely used parts are decoded with the generated gogo code, whose
	// conversions to model types the stock handler uses too.
	hists1 []prompb.Histogram
	exs1   []prompb.Exemplar
	hists2 []writev2.Histogram
	exs2   []writev2.Exemplar
	// metaV1 is every v1 metadata field as it came (tag, length, message):
	// a WriteRequest of its own, for a forwarder.
	metaV1 []byte
}

// Label is one v1 label as it came on the wire (not validated, not sorted).
type Label struct{ Name, Value string }

// Sample is one float sample; ST (start timestamp) is set by v2 only.
type Sample struct {
	V     float64
	T, ST int64
}

// series holds index ranges into the body and the request's arenas. It holds
// no pointer and is small (a request's series are written and read once per
// series on the hot path); int32 suffices since a body is at most maxBody.
type series struct {
	key, keyEnd     int32 // raw v1 label fields in raw, the cache key; empty when not contiguous
	field, fieldEnd int32 // v1: the whole Timeseries field (tag, length, message) in raw
	lbl, lblEnd     int32 // labels (v1) or refs (v2)
	smp, smpEnd     int32
	hist, histEnd   int32
	ex, exEnd       int32
	decoded         bool // v1: labels are in r.labels[lbl:lblEnd]
}

// maxBody bounds a decoded body, so that series can index it with int32
// (the receiver's own limit is far lower).
const maxBody = math.MaxInt32

func (r *Request) reset(v2 bool) {
	r.v2 = v2
	r.raw, r.snappy = nil, nil
	r.symbols = r.symbols[:0]
	r.series = r.series[:0]
	r.metas = r.metas[:0]
	r.labels = r.labels[:0]
	r.refs = r.refs[:0]
	r.samples = r.samples[:0]
	r.hists1 = r.hists1[:0]
	r.exs1 = r.exs1[:0]
	r.hists2 = r.hists2[:0]
	r.exs2 = r.exs2[:0]
	r.metaV1 = r.metaV1[:0]
}

// NumSamples counts float and histogram samples over all series.
func (r *Request) NumSamples() int {
	return len(r.samples) + len(r.hists1) + len(r.hists2)
}

// NumExemplars counts exemplars over all series.
func (r *Request) NumExemplars() int { return len(r.exs1) + len(r.exs2) }

func str(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	return unsafe.String(&b[0], len(b))
}

// decodeV1 decodes a prometheus.WriteRequest. Metadata is checked for validity
// and kept only as it came (MetadataV1): the stock handler drops it, a
// forwarder passes it on.
func (r *Request) decodeV1(b []byte) error {
	r.reset(false)
	r.raw = b // decodeSeriesV1's offsets index it
	for i := 0; i < len(b); {
		pre := i
		num, wt, next, err := tag(b, i)
		if err != nil {
			return err
		}
		i = next
		switch num {
		case 1:
			if wt != 2 {
				return wrongType("Timeseries", wt)
			}
			start, end, err := bytesField(b, i)
			if err != nil {
				return err
			}
			if err := r.decodeSeriesV1(start, end); err != nil {
				return err
			}
			s := &r.series[len(r.series)-1]
			s.field, s.fieldEnd = int32(pre), int32(end)
			i = end
		case 3:
			if wt != 2 {
				return wrongType("Metadata", wt)
			}
			start, end, err := bytesField(b, i)
			if err != nil {
				return err
			}
			var md prompb.MetricMetadata
			if err := md.Unmarshal(b[start:end]); err != nil {
				return err
			}
			r.metaV1 = append(r.metaV1, b[pre:end]...)
			i = end
		default:
			if i, err = skipField(b, pre); err != nil {
				return err
			}
		}
	}
	return nil
}

// decodeSeriesV1 decodes the Timeseries message at r.raw[base:end].
func (r *Request) decodeSeriesV1(base, end int) error {
	b := r.raw[base:end]
	s := series{smp: int32(len(r.samples)), hist: int32(len(r.hists1)), ex: int32(len(r.exs1))}
	// Label fields not interrupted by other fields form the cache key.
	firstLabel, lastLabelEnd, interrupted := -1, 0, false
	for i := 0; i < len(b); {
		pre := i
		num, wt, next, err := tag(b, i)
		if err != nil {
			return err
		}
		i = next
		if num < 1 || num > 4 {
			if i, err = skipField(b, pre); err != nil {
				return err
			}
			continue
		}
		if wt != 2 {
			return wrongType([...]string{"Labels", "Samples", "Exemplars", "Histograms"}[num-1], wt)
		}
		start, end, err := bytesField(b, i)
		if err != nil {
			return err
		}
		field := b[start:end]
		i = end
		switch num {
		case 1:
			// Labels are decoded later, and only for series the cache does
			// not know: the bytes of a known series decoded fine before.
			if firstLabel < 0 {
				firstLabel = pre
			} else if pre != lastLabelEnd {
				interrupted = true
			}
			lastLabelEnd = end
		case 2:
			smp, err := decodeSample(field, false)
			if err != nil {
				return err
			}
			r.samples = append(r.samples, smp)
		case 3:
			r.exs1 = append(r.exs1, prompb.Exemplar{})
			if err := r.exs1[len(r.exs1)-1].Unmarshal(field); err != nil {
				return err
			}
		case 4:
			r.hists1 = append(r.hists1, prompb.Histogram{})
			if err := r.hists1[len(r.hists1)-1].Unmarshal(field); err != nil {
				return err
			}
		}
	}
	switch {
	case firstLabel < 0:
		s.decoded = true
	case !interrupted:
		s.key, s.keyEnd = int32(base+firstLabel), int32(base+lastLabelEnd)
	default:
		// Other fields between the labels: decode them now, and leave this
		// series out of the cache.
		if err := r.decodeLabels(&s, b); err != nil {
			return err
		}
	}
	s.smpEnd, s.histEnd, s.exEnd = int32(len(r.samples)), int32(len(r.hists1)), int32(len(r.exs1))
	r.series = append(r.series, s)
	return nil
}

// decodeLabels decodes the label fields (field 1) among the fields in b into
// r.labels.
func (r *Request) decodeLabels(s *series, b []byte) error {
	s.lbl = int32(len(r.labels))
	for i := 0; i < len(b); {
		pre := i
		num, wt, next, err := tag(b, i)
		if err != nil {
			return err
		}
		i = next
		if num != 1 || wt != 2 {
			if i, err = skipField(b, pre); err != nil {
				return err
			}
			continue
		}
		start, end, err := bytesField(b, i)
		if err != nil {
			return err
		}
		l, err := decodeLabel(b[start:end])
		if err != nil {
			return err
		}
		r.labels = append(r.labels, l)
		i = end
	}
	s.lblEnd, s.decoded = int32(len(r.labels)), true
	return nil
}

// labelsOf returns the labels of a v1 series, decoding them on first use.
func (r *Request) labelsOf(s *series) ([]Label, error) {
	if !s.decoded {
		if err := r.decodeLabels(s, r.raw[s.key:s.keyEnd]); err != nil {
			return nil, fmt.Errorf("decode protobuf: %w", err)
		}
	}
	return r.labels[s.lbl:s.lblEnd], nil
}

func decodeLabel(b []byte) (Label, error) {
	var l Label
	for i := 0; i < len(b); {
		pre := i
		num, wt, next, err := tag(b, i)
		if err != nil {
			return l, err
		}
		i = next
		switch num {
		case 1, 2:
			if wt != 2 {
				return l, wrongType([...]string{"Name", "Value"}[num-1], wt)
			}
			start, end, err := bytesField(b, i)
			if err != nil {
				return l, err
			}
			if num == 1 {
				l.Name = str(b[start:end])
			} else {
				l.Value = str(b[start:end])
			}
			i = end
		default:
			if i, err = skipField(b, pre); err != nil {
				return l, err
			}
		}
	}
	return l, nil
}

// decodeSample decodes a v1 Sample or, with v2, a v2 Sample (which adds
// start_timestamp as field 3).
func decodeSample(b []byte, v2 bool) (Sample, error) {
	var s Sample
	for i := 0; i < len(b); {
		pre := i
		num, wt, next, err := tag(b, i)
		if err != nil {
			return s, err
		}
		i = next
		switch {
		case num == 1:
			if wt != 1 {
				return s, wrongType("Value", wt)
			}
			var bits uint64
			if bits, i, err = fixed64(b, i); err != nil {
				return s, err
			}
			s.V = float(bits)
		case num == 2 || (num == 3 && v2):
			if wt != 0 {
				return s, wrongType("Timestamp", wt)
			}
			var x uint64
			if x, i, err = varint(b, i); err != nil {
				return s, err
			}
			if num == 2 {
				s.T = int64(x)
			} else {
				s.ST = int64(x)
			}
		default:
			if i, err = skipField(b, pre); err != nil {
				return s, err
			}
		}
	}
	return s, nil
}

// decodeV2 decodes an io.prometheus.write.v2.Request. Label refs are resolved
// later, because symbols may follow the series on the wire.
func (r *Request) decodeV2(b []byte) error {
	r.reset(true)
	for i := 0; i < len(b); {
		pre := i
		num, wt, next, err := tag(b, i)
		if err != nil {
			return err
		}
		i = next
		switch num {
		case 4, 5:
			if wt != 2 {
				return wrongType([...]string{"Symbols", "Timeseries"}[num-4], wt)
			}
			start, end, err := bytesField(b, i)
			if err != nil {
				return err
			}
			if num == 4 {
				r.symbols = append(r.symbols, str(b[start:end]))
			} else if err := r.decodeSeriesV2(b[start:end]); err != nil {
				return err
			}
			i = end
		default:
			if i, err = skipField(b, pre); err != nil {
				return err
			}
		}
	}
	return nil
}

func (r *Request) decodeSeriesV2(b []byte) error {
	s := series{lbl: int32(len(r.refs)), smp: int32(len(r.samples)), hist: int32(len(r.hists2)), ex: int32(len(r.exs2))}
	var meta writev2.Metadata
	for i := 0; i < len(b); {
		pre := i
		num, wt, next, err := tag(b, i)
		if err != nil {
			return err
		}
		i = next
		if num == 1 {
			if i, err = r.decodeRefs(b, i, wt); err != nil {
				return err
			}
			continue
		}
		if num < 1 || num > 5 {
			if i, err = skipField(b, pre); err != nil {
				return err
			}
			continue
		}
		if wt != 2 {
			return wrongType([...]string{"", "Samples", "Histograms", "Exemplars", "Metadata"}[num-1], wt)
		}
		start, end, err := bytesField(b, i)
		if err != nil {
			return err
		}
		field := b[start:end]
		i = end
		switch num {
		case 2:
			smp, err := decodeSample(field, true)
			if err != nil {
				return err
			}
			r.samples = append(r.samples, smp)
		case 3:
			r.hists2 = append(r.hists2, writev2.Histogram{})
			if err := r.hists2[len(r.hists2)-1].Unmarshal(field); err != nil {
				return err
			}
		case 4:
			r.exs2 = append(r.exs2, writev2.Exemplar{})
			if err := r.exs2[len(r.exs2)-1].Unmarshal(field); err != nil {
				return err
			}
		case 5:
			// A message field seen twice is merged, field by field.
			if err := meta.Unmarshal(field); err != nil {
				return err
			}
		}
	}
	s.lblEnd, s.smpEnd, s.histEnd, s.exEnd = int32(len(r.refs)), int32(len(r.samples)), int32(len(r.hists2)), int32(len(r.exs2))
	r.series = append(r.series, s)
	r.metas = append(r.metas, meta)
	return nil
}

// decodeRefs reads labels_refs, packed or not. Like gogo, a packed varint is
// bounded by the series message, not by the packed field.
func (r *Request) decodeRefs(b []byte, i, wt int) (int, error) {
	switch wt {
	case 0:
		x, i, err := varint(b, i)
		if err != nil {
			return i, err
		}
		r.refs = append(r.refs, uint32(x))
		return i, nil
	case 2:
		start, end, err := bytesField(b, i)
		if err != nil {
			return i, err
		}
		for i = start; i < end; {
			var x uint64
			if x, i, err = varint(b, i); err != nil {
				return i, err
			}
			r.refs = append(r.refs, uint32(x))
		}
		return i, nil
	default:
		return i, wrongType("LabelsRefs", wt)
	}
}

// Decode decodes b, the snappy-decompressed body, as a v1 (prometheus.WriteRequest)
// or v2 (io.prometheus.write.v2.Request) request. It accepts and refuses exactly
// the bytes the generated gogo code does. r keeps pointing into b.
func (r *Request) Decode(b []byte, v2 bool) error {
	var err error
	switch {
	case len(b) > maxBody:
		r.reset(v2)
		err = fmt.Errorf("a body of %d bytes is over %d", len(b), maxBody)
	case v2:
		err = r.decodeV2(b)
	default:
		err = r.decodeV1(b)
	}
	if err != nil {
		r.raw = nil
		return fmt.Errorf("decode protobuf: %w", err)
	}
	r.raw = b
	return nil
}
