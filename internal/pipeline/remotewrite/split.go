package remotewrite

import (
	"github.com/cespare/xxhash/v2"
)

// SeriesV1 is one series of a v1 WriteRequest as it is on the wire.
type SeriesV1 struct {
	// Field is the whole Timeseries field (tag, length, message) as it came:
	// fields concatenated form a v1 WriteRequest, so a forwarder can regroup
	// series without decoding or re-encoding a sample.
	Field []byte
	// Hash is xxhash of the label fields as they came (tag, length and
	// Label bytes each, in wire order): the same label set encoded the same
	// way hashes the same in every request, so a forwarder can shard by it
	// and keep order. For labels not interrupted by other fields it is
	// xxhash of Request.Key.
	Hash uint64
	// Items counts samples and histograms (not exemplars).
	Items int
	// Newest is the later timestamp of the last sample and the last
	// histogram (0 when there is neither).
	Newest int64
}

// SplitV1 calls fn with each series of the v1 WriteRequest b, in order,
// without decoding labels or samples, and meta (when not nil) with each metadata field
// (tag, length and MetricMetadata bytes, as they came); unknown fields are
// skipped. It walks the fields exactly as Decode does, so it accepts every
// request that Decode (and the generated gogo code) accepts: a request the
// receiver acknowledged always splits. Field and the metadata fields alias b.
func SplitV1(b []byte, fn func(SeriesV1), meta func(field []byte)) error {
	var d xxhash.Digest
	for i := 0; i < len(b); {
		pre := i
		num, wt, next, err := tag(b, i)
		if err != nil {
			return err
		}
		i = next
		if num == 3 && wt == 2 && meta != nil {
			_, end, err := bytesField(b, i)
			if err != nil {
				return err
			}
			meta(b[pre:end:end])
			i = end
			continue
		}
		if num != 1 {
			if i, err = skipField(b, pre); err != nil {
				return err
			}
			continue
		}
		if wt != 2 {
			return wrongType("Timeseries", wt)
		}
		start, end, err := bytesField(b, i)
		if err != nil {
			return err
		}
		s, err := scanSeriesV1(b[start:end], &d)
		if err != nil {
			return err
		}
		s.Field = b[pre:end:end]
		fn(s)
		i = end
	}
	return nil
}

// scanSeriesV1 hashes a TimeSeries' label fields and counts its samples and
// histograms, decoding only the last of each for its timestamp. Labels are
// not decoded: the receiver checked them.
func scanSeriesV1(b []byte, d *xxhash.Digest) (SeriesV1, error) {
	var s SeriesV1
	var lastSample, lastHist []byte
	d.Reset()
	for i := 0; i < len(b); {
		pre := i
		num, wt, next, err := tag(b, i)
		if err != nil {
			return s, err
		}
		i = next
		if num < 1 || num > 4 {
			if i, err = skipField(b, pre); err != nil {
				return s, err
			}
			continue
		}
		if wt != 2 {
			return s, wrongType([...]string{"Labels", "Samples", "Exemplars", "Histograms"}[num-1], wt)
		}
		start, end, err := bytesField(b, i)
		if err != nil {
			return s, err
		}
		field := b[start:end]
		i = end
		switch num {
		case 1:
			_, _ = d.Write(b[pre:end])
		case 2:
			s.Items++
			lastSample = field
		case 4:
			s.Items++
			lastHist = field
		}
	}
	s.Hash = d.Sum64()
	// Sample.timestamp is field 2, Histogram.timestamp field 15.
	s.Newest = max(lastVarint(lastSample, 2), lastVarint(lastHist, 15))
	return s, nil
}

// lastVarint returns the last varint field num of message b as int64; 0
// when there is none or b does not decode (only a metric's gauge reads it).
func lastVarint(b []byte, num int32) int64 {
	var v int64
	for i := 0; i < len(b); {
		pre := i
		n, wt, next, err := tag(b, i)
		if err != nil {
			return v
		}
		if n == num && wt == 0 {
			x, next, err := varint(b, next)
			if err != nil {
				return v
			}
			v, i = int64(x), next
			continue
		}
		if i, err = skipField(b, pre); err != nil {
			return v
		}
	}
	return v
}
