package forward

import (
	"encoding/binary"
	"errors"
)

// A queue record is the sender's tenant and one request body:
// uvarint(len(tenant)) tenant body.

func encodeRecord(buf []byte, tenant string, body []byte) []byte {
	buf = binary.AppendUvarint(buf[:0], uint64(len(tenant)))
	buf = append(buf, tenant...)
	return append(buf, body...)
}

var errBadRecord = errors.New("bad queue record")

func decodeRecord(rec []byte) (tenant string, body []byte, err error) {
	n, l := binary.Uvarint(rec)
	if l <= 0 || uint64(len(rec)-l) < n {
		return "", nil, errBadRecord
	}
	return string(rec[l : l+int(n)]), rec[l+int(n):], nil
}
