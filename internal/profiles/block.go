package profiles

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/klauspost/compress/zstd"
	"github.com/prometheus/prometheus/model/labels"
)

const (
	blockDataFile    = "data.zst"
	blockMetaFile    = "meta.json"
	blockCodecVerson = 1
)

// blockMeta is kept in memory for every block: enough to answer label and
// profile-type queries and to pick blocks by time without decoding their data.
type blockMeta struct {
	MinT     int64        `json:"min_time_ns"`
	MaxT     int64        `json:"max_time_ns"`
	WALSeq   int          `json:"wal_seq"` // WAL segments below this are in a block
	Profiles int          `json:"profiles"`
	Samples  int          `json:"samples"`
	Series   []seriesMeta `json:"series"`
}

type seriesMeta struct {
	Labels map[string]string `json:"labels"`
	MinT   int64             `json:"min_time_ns"`
	MaxT   int64             `json:"max_time_ns"`

	ls labels.Labels
}

// block is an immutable table on disk.
type block struct {
	dir  string
	meta blockMeta
	size int64
}

var (
	zstdEncOnce sync.Once
	zstdEnc     *zstd.Encoder
	zstdDec     *zstd.Decoder
)

func zstdCodecs() (*zstd.Encoder, *zstd.Decoder) {
	zstdEncOnce.Do(func() {
		zstdEnc, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault))
		zstdDec, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0))
	})
	return zstdEnc, zstdDec
}

// writeBlock writes t into a new block directory under parent, atomically: into a
// temporary directory that is synced and renamed.
func writeBlock(parent, name string, t *table, walSeq int) (*block, error) {
	meta := blockMeta{MinT: t.minT, MaxT: t.maxT, WALSeq: walSeq, Samples: t.samples}
	for _, s := range t.series {
		meta.Profiles += len(s.profiles)
		meta.Series = append(meta.Series, seriesMeta{Labels: s.labels.Map(), MinT: s.minT, MaxT: s.maxT, ls: s.labels})
	}
	enc, _ := zstdCodecs()
	data := enc.EncodeAll(encodeTable(t), nil)
	metaJSON, err := json.Marshal(meta)
	if err != nil {
		return nil, fmt.Errorf("encode block meta: %w", err)
	}
	tmp := filepath.Join(parent, name+".tmp")
	if err := os.RemoveAll(tmp); err != nil {
		return nil, fmt.Errorf("clear temp block: %w", err)
	}
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("create block dir: %w", err)
	}
	if err := writeFileSync(filepath.Join(tmp, blockDataFile), data); err != nil {
		return nil, err
	}
	if err := writeFileSync(filepath.Join(tmp, blockMetaFile), metaJSON); err != nil {
		return nil, err
	}
	if err := syncPath(tmp); err != nil {
		return nil, err
	}
	dir := filepath.Join(parent, name)
	if err := os.Rename(tmp, dir); err != nil {
		return nil, fmt.Errorf("rename block: %w", err)
	}
	if err := syncPath(parent); err != nil {
		return nil, err
	}
	return &block{dir: dir, meta: meta, size: int64(len(data) + len(metaJSON))}, nil
}

// openBlock reads a block's meta; its data is decoded on demand.
func openBlock(dir string) (*block, error) {
	raw, err := os.ReadFile(filepath.Join(dir, blockMetaFile))
	if err != nil {
		return nil, fmt.Errorf("read block meta: %w", err)
	}
	b := &block{dir: dir}
	if err := json.Unmarshal(raw, &b.meta); err != nil {
		return nil, fmt.Errorf("parse block meta %s: %w", dir, err)
	}
	for i := range b.meta.Series {
		s := &b.meta.Series[i]
		s.ls = labels.FromMap(s.Labels)
	}
	fi, err := os.Stat(filepath.Join(dir, blockDataFile))
	if err != nil {
		return nil, fmt.Errorf("stat block data: %w", err)
	}
	b.size = fi.Size() + int64(len(raw))
	return b, nil
}

func (b *block) load() (*table, error) {
	raw, err := os.ReadFile(filepath.Join(b.dir, blockDataFile))
	if err != nil {
		return nil, fmt.Errorf("read block data: %w", err)
	}
	_, dec := zstdCodecs()
	buf, err := dec.DecodeAll(raw, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress block %s: %w", b.dir, err)
	}
	t, err := decodeTable(buf)
	if err != nil {
		return nil, fmt.Errorf("decode block %s: %w", b.dir, err)
	}
	return t, nil
}

func writeFileSync(path string, data []byte) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("create %s: %w", filepath.Base(path), err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", filepath.Base(path), err)
	}
	return f.Close()
}

func syncPath(path string) error {
	d, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("open for sync: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return nil
}

// encodeTable writes names, the stack tree, then series with their profiles;
// sample nodes are delta-encoded (they are sorted) and times per series too.
func encodeTable(t *table) []byte {
	dst := []byte{blockCodecVerson}
	dst = binary.AppendUvarint(dst, uint64(len(t.names)))
	for _, n := range t.names {
		dst = appendString(dst, n)
	}
	dst = binary.AppendUvarint(dst, uint64(len(t.nodes)))
	for _, n := range t.nodes {
		dst = binary.AppendUvarint(dst, uint64(n.parent))
		dst = binary.AppendUvarint(dst, uint64(n.name))
	}
	dst = binary.AppendUvarint(dst, uint64(len(t.series)))
	for _, s := range t.series {
		dst = binary.AppendUvarint(dst, uint64(s.labels.Len()))
		s.labels.Range(func(l labels.Label) {
			dst = appendString(dst, l.Name)
			dst = appendString(dst, l.Value)
		})
		dst = binary.AppendUvarint(dst, uint64(len(s.profiles)))
		var prevT int64
		for _, p := range s.profiles {
			dst = binary.AppendVarint(dst, p.t-prevT)
			prevT = p.t
			dst = binary.AppendUvarint(dst, uint64(len(p.samples)))
			var prevNode uint32
			for _, x := range p.samples {
				dst = binary.AppendUvarint(dst, uint64(x.node-prevNode))
				prevNode = x.node
				dst = binary.AppendVarint(dst, x.value)
				dst = binary.AppendUvarint(dst, x.span)
				dst = binary.AppendUvarint(dst, uint64(x.trace))
			}
		}
	}
	return dst
}

func decodeTable(buf []byte) (*table, error) {
	d := decoder{buf: buf}
	if v := d.byte(); v != blockCodecVerson {
		if d.err != nil {
			return nil, d.err
		}
		return nil, fmt.Errorf("unknown block version %d", v)
	}
	t := &table{minT: 1<<63 - 1, maxT: -1 << 63}
	t.names = make([]string, d.count(1))
	for i := range t.names {
		t.names[i] = d.string()
	}
	t.nodes = make([]node, d.count(2))
	for i := range t.nodes {
		n := node{parent: d.uint32(), name: d.uint32()}
		if i > 0 && (int(n.parent) >= i || int(n.name) >= len(t.names)) {
			return nil, fmt.Errorf("node %d: bad parent %d or name %d", i, n.parent, n.name)
		}
		t.nodes[i] = n
	}
	if len(t.nodes) == 0 {
		return nil, fmt.Errorf("no root node")
	}
	nSeries := d.count(2)
	lb := labels.NewScratchBuilder(8)
	for range nSeries {
		lb.Reset()
		for range d.count(2) {
			name := d.string()
			lb.Add(name, d.string())
		}
		lb.Sort()
		ls := lb.Labels()
		s := &series{labels: ls, typeID: ls.Get(LabelProfileType), minT: 1<<63 - 1, maxT: -1 << 63}
		profiles := make([]profileRec, d.count(2))
		var prevT int64
		for i := range profiles {
			p := &profiles[i]
			p.t = prevT + d.varint()
			prevT = p.t
			p.samples = make([]sampleRec, d.count(4))
			var prevNode uint32
			for j := range p.samples {
				x := &p.samples[j]
				x.node = prevNode + d.uint32()
				prevNode = x.node
				x.value = d.varint()
				x.span = d.uvarint()
				x.trace = d.uint32()
				if int(x.node) >= len(t.nodes) || int(x.trace) >= len(t.names) {
					return nil, fmt.Errorf("sample refers to node %d / name %d out of range", x.node, x.trace)
				}
				p.total += x.value
			}
		}
		s.profiles = nil
		for _, p := range profiles {
			t.addProfile(s, p)
		}
		t.series = append(t.series, s)
	}
	if d.err != nil {
		return nil, d.err
	}
	if len(d.buf) != 0 {
		return nil, fmt.Errorf("%d trailing bytes", len(d.buf))
	}
	return t, nil
}
