package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record framing: uint32 little-endian payload length, uint32 little-endian
// CRC-32C of the payload, then the payload. The format is the one both earlier
// WALs of Vispyr wrote, so their segments replay unchanged.
const headerSize = 8

// MaxRecordSize bounds one record, so that a damaged length cannot make replay
// allocate gigabytes.
const MaxRecordSize = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrTorn means the bytes end inside a record: a write that a crash or a
	// full disk interrupted.
	ErrTorn = errors.New("torn record")
	// ErrCorrupt means a record failed its checksum or has an impossible length.
	ErrCorrupt = errors.New("corrupt record")
)

// appendHeader appends the frame header of payload to dst.
func appendHeader(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	return binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
}

// AppendRecord appends payload, framed, to dst.
func AppendRecord(dst, payload []byte) []byte {
	return append(appendHeader(dst, payload), payload...)
}

// payloadSize validates a frame header and returns its payload length. A zero
// length is refused: Append never writes one, and a run of zero bytes (the
// rest of a preallocated segment, or what a file system may show after an OS
// crash) would otherwise decode as records.
func payloadSize(hdr []byte) (int, error) {
	size := binary.LittleEndian.Uint32(hdr)
	if size == 0 || size > MaxRecordSize {
		return 0, fmt.Errorf("%w: length %d", ErrCorrupt, size)
	}
	return int(size), nil
}

// checkPayload verifies payload against the checksum in its frame header.
func checkPayload(hdr, payload []byte) error {
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(hdr[4:]) {
		return fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return nil
}

// DecodeRecord reads the record at the start of b and returns its payload
// (aliasing b) and the bytes the record occupies.
func DecodeRecord(b []byte) (payload []byte, n int, err error) {
	if len(b) < headerSize {
		return nil, 0, ErrTorn
	}
	size, err := payloadSize(b)
	if err != nil {
		return nil, 0, err
	}
	if len(b)-headerSize < size {
		return nil, 0, ErrTorn
	}
	payload = b[headerSize : headerSize+size]
	if err := checkPayload(b, payload); err != nil {
		return nil, 0, err
	}
	return payload, headerSize + size, nil
}
