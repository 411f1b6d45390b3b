package logs

import (
	"encoding/binary"
	"fmt"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/encoding"

	"github.com/vispyr/vispyr/internal/decbuf"
)

// A WAL record is one accepted push of one tenant, after validation and the
// ingest defaults (service_name, detected_level), so replay only re-applies it:
//
//	byte version | string tenant | uvarint streams |
//	streams × (labels | uvarint entries | entries × (varint ts | string line | labels))
//
// labels is uvarint count + count × (string name | string value).
const recordVersion = 1

func appendLabels(b []byte, ls labels.Labels) []byte {
	b = binary.AppendUvarint(b, uint64(ls.Len()))
	ls.Range(func(l labels.Label) {
		b = appendString(b, l.Name)
		b = appendString(b, l.Value)
	})
	return b
}

func encodeRecord(b []byte, tenant string, streams []Stream) []byte {
	b = append(b, recordVersion)
	b = appendString(b, tenant)
	b = binary.AppendUvarint(b, uint64(len(streams)))
	for _, s := range streams {
		b = appendLabels(b, s.Labels)
		b = binary.AppendUvarint(b, uint64(len(s.Entries)))
		for _, e := range s.Entries {
			b = binary.AppendVarint(b, e.Timestamp)
			b = appendString(b, e.Line)
			b = appendLabels(b, e.Metadata)
		}
	}
	return b
}

func readLabels(r *encoding.Decbuf, sb *labels.ScratchBuilder) labels.Labels {
	n := r.Uvarint64()
	if n > uint64(len(r.B)) {
		r.E = errCorruptChunk
		return labels.EmptyLabels()
	}
	sb.Reset()
	for i := uint64(0); i < n && r.E == nil; i++ {
		name := string(decbuf.UvarintBytes(r))
		sb.Add(name, string(decbuf.UvarintBytes(r)))
	}
	sb.Sort()
	return sb.Labels()
}

func decodeRecord(b []byte) (string, []Stream, error) {
	if len(b) == 0 || b[0] != recordVersion {
		return "", nil, fmt.Errorf("logs wal record: unknown version")
	}
	r := &encoding.Decbuf{B: b[1:]}
	tenant := string(decbuf.UvarintBytes(r))
	n := r.Uvarint64()
	if n > uint64(len(r.B)) {
		return "", nil, fmt.Errorf("logs wal record: %w", errCorruptChunk)
	}
	sb := labels.NewScratchBuilder(8)
	streams := make([]Stream, 0, n)
	for i := uint64(0); i < n && r.E == nil; i++ {
		s := Stream{Labels: readLabels(r, &sb)}
		k := r.Uvarint64()
		if k > uint64(len(r.B)) {
			r.E = errCorruptChunk
			break
		}
		s.Entries = make([]Entry, 0, k)
		for j := uint64(0); j < k && r.E == nil; j++ {
			ts := r.Varint64()
			line := string(decbuf.UvarintBytes(r))
			s.Entries = append(s.Entries, Entry{Timestamp: ts, Line: line, Metadata: readLabels(r, &sb)})
		}
		streams = append(streams, s)
	}
	if r.E != nil || len(r.B) != 0 {
		return "", nil, fmt.Errorf("logs wal record: %w", errCorruptChunk)
	}
	return tenant, streams, nil
}
