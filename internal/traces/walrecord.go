package traces

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/klauspost/compress/s2"

	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// A WAL record is one acknowledged request: version byte, uvarint tenant length,
// tenant, then the request's spans in spanrow's binary row form, compressed with S2.
// Rows rather than OTLP protobuf because they are already built for the head (no
// second marshal on the hot path, no conversion on replay); S2 because it is cheap
// and cuts the bytes each fsync must push several-fold.
const walRecordV1 = 1

// recordBufs recycles the encode buffers of WAL records (a few hundred KB per
// request): allocating them fresh made the runtime zero them on every request.
var recordBufs sync.Pool

func getBuf() []byte {
	if b, ok := recordBufs.Get().(*[]byte); ok {
		return (*b)[:0]
	}
	return nil
}

func putBuf(b []byte) {
	if cap(b) <= 4<<20 { // an outsized request's buffer is left to the GC
		recordBufs.Put(&b)
	}
}

// encodeWALRecord encodes a record into a pooled buffer; release it with putBuf once
// the WAL has taken the record.
func encodeWALRecord(tenant string, rows []spanrow.Span) []byte {
	raw := spanrow.AppendRows(getBuf(), rows)
	b := slices.Grow(getBuf(), 1+binary.MaxVarintLen64+len(tenant)+s2.MaxEncodedLen(len(raw)))
	b = append(b, walRecordV1)
	b = binary.AppendUvarint(b, uint64(len(tenant)))
	b = append(b, tenant...)
	b = append(b, s2.Encode(b[len(b):cap(b)], raw)...)
	putBuf(raw)
	return b
}

func decodeWALRecord(b []byte) (string, []spanrow.Span, error) {
	if len(b) == 0 || b[0] != walRecordV1 {
		return "", nil, errors.New("unknown wal record version")
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b)-1-k) {
		return "", nil, errors.New("bad tenant in wal record")
	}
	tenant := string(b[1+k : 1+k+int(n)])
	body := b[1+k+int(n):]
	if size, err := s2.DecodedLen(body); err != nil || size > 512<<20 {
		return "", nil, fmt.Errorf("decompress wal record: bad length (%v)", err)
	}
	raw, err := s2.Decode(nil, body)
	if err != nil {
		return "", nil, fmt.Errorf("decompress wal record: %w", err)
	}
	rows, err := spanrow.DecodeRows(raw)
	if err != nil {
		return "", nil, fmt.Errorf("decode wal record: %w", err)
	}
	return tenant, rows, nil
}
