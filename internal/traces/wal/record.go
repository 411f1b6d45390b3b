// Package wal is the trace store's write-ahead log: numbered segment files of
// length-prefixed, CRC-checked records, appended with group commit so that many
// concurrent writers share one fsync.
package wal

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// Record framing: uint32 little-endian payload length, uint32 CRC-32C of the payload,
// payload.
const headerSize = 8

// MaxRecordSize bounds one record, so a corrupt length cannot make replay allocate
// gigabytes.
const MaxRecordSize = 256 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

var (
	// ErrTorn means the input ends inside a record: a write that a crash interrupted.
	ErrTorn = errors.New("torn record")
	// ErrCorrupt means a complete record failed its checksum or has an impossible length.
	ErrCorrupt = errors.New("corrupt record")
)

// AppendRecord appends the framed payload to dst.
func AppendRecord(dst, payload []byte) []byte {
	dst = binary.LittleEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.LittleEndian.AppendUint32(dst, crc32.Checksum(payload, castagnoli))
	return append(dst, payload...)
}

// DecodeRecord reads the record at the start of b and returns its payload (aliasing b)
// and the bytes it occupied.
func DecodeRecord(b []byte) (payload []byte, n int, err error) {
	if len(b) < headerSize {
		return nil, 0, ErrTorn
	}
	size := binary.LittleEndian.Uint32(b)
	if size > MaxRecordSize {
		return nil, 0, fmt.Errorf("%w: length %d over limit", ErrCorrupt, size)
	}
	if uint64(len(b)-headerSize) < uint64(size) {
		return nil, 0, ErrTorn
	}
	payload = b[headerSize : headerSize+int(size)]
	if crc32.Checksum(payload, castagnoli) != binary.LittleEndian.Uint32(b[4:]) {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", ErrCorrupt)
	}
	return payload, headerSize + int(size), nil
}
