package logs

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/tsdb/encoding"

	"github.com/vispyr/vispyr/internal/decbuf"
)

// A block is one flush written to disk: the chunks sealed since the previous
// flush, for every tenant and stream, then an index of them. Blocks are
// immutable; retention deletes whole blocks, oldest (by newest line) first.
//
//	magic | chunk data ... | index | uint64 index offset | uint32 CRC-32C of index | magic
//
// index: uvarint tenants × (string tenant | uvarint streams × (labels |
// uvarint chunks × (varint minT | varint maxT | uvarint entries | uvarint raw bytes |
// uvarint offset | uvarint size | uvarint filter words × uint64)))
const (
	blockMagic  = "VSPLOGS1"
	blockSuffix = ".block"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

type block struct {
	path       string
	f          *os.File
	size       int64
	minT, maxT int64
}

func (b *block) read(off, size int64) ([]byte, error) {
	buf := make([]byte, size)
	if _, err := b.f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("read chunk of %s: %w", filepath.Base(b.path), err)
	}
	return buf, nil
}

// blockChunk is a chunk to write and the stream it belongs to.
type blockChunk struct {
	tenant string
	stream *stream
	ref    *chunkRef
}

// writeBlock writes chunks to a new block file (fsync'd, then renamed into place)
// and returns the block and the refs that now point into it, in the same order.
func writeBlock(dir string, seq int, chunks []blockChunk) (*block, []*chunkRef, error) {
	path := filepath.Join(dir, fmt.Sprintf("%08d%s", seq, blockSuffix))
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("create block: %w", err)
	}
	defer os.Remove(tmp)
	w := bufio.NewWriterSize(f, 1<<20)
	w.WriteString(blockMagic)
	off := int64(len(blockMagic))
	b := &block{path: path, minT: chunks[0].ref.meta.MinT, maxT: chunks[0].ref.meta.MaxT}
	refs := make([]*chunkRef, len(chunks))
	for i, c := range chunks {
		w.Write(c.ref.data)
		refs[i] = &chunkRef{meta: c.ref.meta, blk: b, off: off, size: int64(len(c.ref.data))}
		off += int64(len(c.ref.data))
		b.minT, b.maxT = min(b.minT, c.ref.meta.MinT), max(b.maxT, c.ref.meta.MaxT)
	}
	idx := encodeBlockIndex(chunks, refs)
	w.Write(idx)
	var foot [12]byte
	binary.LittleEndian.PutUint64(foot[:8], uint64(off))
	binary.LittleEndian.PutUint32(foot[8:], crc32.Checksum(idx, crcTable))
	w.Write(foot[:])
	w.WriteString(blockMagic)
	if err := w.Flush(); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("write block: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("sync block: %w", err)
	}
	f.Close()
	if err := os.Rename(tmp, path); err != nil {
		return nil, nil, fmt.Errorf("rename block: %w", err)
	}
	if err := syncDir(dir); err != nil {
		return nil, nil, err
	}
	if b.f, err = os.Open(path); err != nil {
		return nil, nil, fmt.Errorf("open block: %w", err)
	}
	fi, _ := b.f.Stat()
	b.size = fi.Size()
	return b, refs, nil
}

// encodeBlockIndex groups chunks by tenant and stream (they arrive grouped).
func encodeBlockIndex(chunks []blockChunk, refs []*chunkRef) []byte {
	type group struct {
		tenant string
		stream *stream
		refs   []*chunkRef
	}
	var groups []group
	for i, c := range chunks {
		if n := len(groups); n > 0 && groups[n-1].stream == c.stream && groups[n-1].tenant == c.tenant {
			groups[n-1].refs = append(groups[n-1].refs, refs[i])
			continue
		}
		groups = append(groups, group{tenant: c.tenant, stream: c.stream, refs: []*chunkRef{refs[i]}})
	}
	var b []byte
	tenants := 0
	for i := range groups {
		if i == 0 || groups[i].tenant != groups[i-1].tenant {
			tenants++
		}
	}
	b = binary.AppendUvarint(b, uint64(tenants))
	for i := 0; i < len(groups); {
		j := i
		for j < len(groups) && groups[j].tenant == groups[i].tenant {
			j++
		}
		b = appendString(b, groups[i].tenant)
		b = binary.AppendUvarint(b, uint64(j-i))
		for _, g := range groups[i:j] {
			b = appendLabels(b, g.stream.labels)
			b = binary.AppendUvarint(b, uint64(len(g.refs)))
			for _, r := range g.refs {
				b = binary.AppendVarint(b, r.meta.MinT)
				b = binary.AppendVarint(b, r.meta.MaxT)
				b = binary.AppendUvarint(b, uint64(r.meta.Entries))
				b = binary.AppendUvarint(b, uint64(r.meta.RawBytes))
				b = binary.AppendUvarint(b, uint64(r.off))
				b = binary.AppendUvarint(b, uint64(r.size))
				b = binary.AppendUvarint(b, uint64(len(r.meta.Filter)))
				for _, w := range r.meta.Filter {
					b = binary.LittleEndian.AppendUint64(b, w)
				}
			}
		}
		i = j
	}
	return b
}

// loadedStream is one stream's chunks in a block being opened.
type loadedStream struct {
	tenant string
	labels labels.Labels
	refs   []*chunkRef
}

// openBlock reads a block's index.
func openBlock(path string) (*block, []loadedStream, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("open block: %w", err)
	}
	b, streams, err := readBlockIndex(f, path)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return b, streams, nil
}

var errCorruptBlock = errors.New("corrupt block")

func readBlockIndex(f *os.File, path string) (*block, []loadedStream, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, fmt.Errorf("stat block: %w", err)
	}
	size := fi.Size()
	tail := int64(12 + len(blockMagic))
	if size < int64(len(blockMagic))+tail {
		return nil, nil, fmt.Errorf("%s: %w: too short", path, errCorruptBlock)
	}
	foot := make([]byte, tail)
	if _, err := f.ReadAt(foot, size-tail); err != nil {
		return nil, nil, fmt.Errorf("read block footer: %w", err)
	}
	idxOff := int64(binary.LittleEndian.Uint64(foot[:8]))
	if string(foot[12:]) != blockMagic || idxOff < int64(len(blockMagic)) || idxOff > size-tail {
		return nil, nil, fmt.Errorf("%s: %w: bad footer", path, errCorruptBlock)
	}
	idx := make([]byte, size-tail-idxOff)
	if _, err := f.ReadAt(idx, idxOff); err != nil {
		return nil, nil, fmt.Errorf("read block index: %w", err)
	}
	if crc32.Checksum(idx, crcTable) != binary.LittleEndian.Uint32(foot[8:12]) {
		return nil, nil, fmt.Errorf("%s: %w: index checksum mismatch", path, errCorruptBlock)
	}
	b := &block{path: path, f: f, size: size}
	streams, err := decodeBlockIndex(idx, b, idxOff)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, streams, nil
}

func decodeBlockIndex(idx []byte, b *block, dataEnd int64) ([]loadedStream, error) {
	r := &encoding.Decbuf{B: idx}
	sb := labels.NewScratchBuilder(8)
	first := true
	var out []loadedStream
	nt := r.Uvarint64()
	for i := uint64(0); i < nt && r.E == nil; i++ {
		ten := string(decbuf.UvarintBytes(r))
		ns := r.Uvarint64()
		for j := uint64(0); j < ns && r.E == nil; j++ {
			ls := loadedStream{tenant: ten, labels: readLabels(r, &sb)}
			nc := r.Uvarint64()
			for k := uint64(0); k < nc && r.E == nil; k++ {
				c := &chunkRef{blk: b}
				c.meta.MinT, c.meta.MaxT = r.Varint64(), r.Varint64()
				c.meta.Entries, c.meta.RawBytes = uint32(r.Uvarint64()), uint32(r.Uvarint64())
				c.off, c.size = int64(r.Uvarint64()), int64(r.Uvarint64())
				nw := r.Uvarint64()
				if nw > uint64(len(r.B))/8 || c.off+c.size > dataEnd {
					return nil, errCorruptBlock
				}
				c.meta.Filter = make(trigramFilter, nw)
				for w := range c.meta.Filter {
					c.meta.Filter[w] = binary.LittleEndian.Uint64(r.B[w*8:])
				}
				r.B = r.B[nw*8:]
				if first {
					b.minT, b.maxT, first = c.meta.MinT, c.meta.MaxT, false
				}
				b.minT, b.maxT = min(b.minT, c.meta.MinT), max(b.maxT, c.meta.MaxT)
				ls.refs = append(ls.refs, c)
			}
			out = append(out, ls)
		}
	}
	if r.E != nil || len(r.B) != 0 {
		return nil, errCorruptBlock
	}
	return out, nil
}

// listBlocks returns the block sequence numbers in dir, ascending.
func listBlocks(dir string) ([]int, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("list blocks: %w", err)
	}
	var seqs []int
	for _, e := range ents {
		if name, ok := strings.CutSuffix(e.Name(), blockSuffix); ok {
			if n, err := strconv.Atoi(name); err == nil {
				seqs = append(seqs, n)
			}
		}
	}
	slices.Sort(seqs)
	return seqs, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("open dir: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("sync dir: %w", err)
	}
	return nil
}
