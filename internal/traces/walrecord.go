package traces

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/klauspost/compress/s2"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// A WAL record is one acknowledged request: version byte, uvarint tenant length,
// tenant, then the request's OTLP protobuf compressed with S2 (cheap to compress,
// and it cuts the bytes each fsync has to push by 3-5x).
const walRecordV1 = 1

var protoMarshaler ptrace.ProtoMarshaler
var protoUnmarshaler ptrace.ProtoUnmarshaler

func encodeWALRecord(tenant string, td ptrace.Traces) ([]byte, error) {
	raw, err := protoMarshaler.MarshalTraces(td)
	if err != nil {
		return nil, fmt.Errorf("marshal traces: %w", err)
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(tenant)+s2.MaxEncodedLen(len(raw)))
	b = append(b, walRecordV1)
	b = binary.AppendUvarint(b, uint64(len(tenant)))
	b = append(b, tenant...)
	return append(b, s2.Encode(b[len(b):cap(b)], raw)...), nil
}

func decodeWALRecord(b []byte) (string, ptrace.Traces, error) {
	if len(b) == 0 || b[0] != walRecordV1 {
		return "", ptrace.Traces{}, errors.New("unknown wal record version")
	}
	n, k := binary.Uvarint(b[1:])
	if k <= 0 || n > uint64(len(b)-1-k) {
		return "", ptrace.Traces{}, errors.New("bad tenant in wal record")
	}
	tenant := string(b[1+k : 1+k+int(n)])
	raw, err := s2.Decode(nil, b[1+k+int(n):])
	if err != nil {
		return "", ptrace.Traces{}, fmt.Errorf("decompress wal record: %w", err)
	}
	td, err := protoUnmarshaler.UnmarshalTraces(raw)
	if err != nil {
		return "", ptrace.Traces{}, fmt.Errorf("unmarshal wal record: %w", err)
	}
	return tenant, td, nil
}
