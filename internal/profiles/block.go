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

	"github.com/vispyr/vispyr/internal/pipeline/profile"
)

const (
	blockDataFile    = "data.zst"
	blockMetaFile    = "meta.json"
	blockCodecVerson = 1
)

// blockMeta is kept in memory for every block: enough to answer label and
// profile-type queries and to pick blocks by time without reading their data.
type blockMeta struct {
	Version  int          `json:"version"`
	MinT     int64        `json:"min_time_ns"`
	MaxT     int64        `json:"max_time_ns"`
	WALSeq   int          `json:"wal_seq"` // WAL segments below this are in a block
	Profiles int          `json:"profiles"`
	Samples  int          `json:"samples"`
	Symbols  section      `json:"symbols"`
	Series   []seriesMeta `json:"series"`
}

// section locates one zstd frame in the block's data file.
type section struct {
	Off int64 `json:"off"`
	Len int64 `json:"len"`
}

type seriesMeta struct {
	Labels map[string]string `json:"labels"`
	MinT   int64             `json:"min_time_ns"`
	MaxT   int64             `json:"max_time_ns"`
	Data   section           `json:"data"`

	ls labels.Labels
}

// block is an immutable table on disk: one compressed section with the names and
// the stack tree, then one per series, so a query reads only the series it selects.
type block struct {
	dir  string
	meta blockMeta
	size int64
}

const blockVersion = 2

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
	meta := blockMeta{Version: blockVersion, MinT: t.minT, MaxT: t.maxT, WALSeq: walSeq, Samples: t.samples}
	enc, _ := zstdCodecs()
	data := enc.EncodeAll(encodeSymbols(t), nil)
	meta.Symbols = section{Off: 0, Len: int64(len(data))}
	for _, s := range t.series {
		meta.Profiles += len(s.profiles)
		off := int64(len(data))
		data = enc.EncodeAll(encodeProfiles(s.profiles), data)
		meta.Series = append(meta.Series, seriesMeta{Labels: s.labels.Map(), MinT: s.minT, MaxT: s.maxT,
			Data: section{Off: off, Len: int64(len(data)) - off}, ls: s.labels})
	}
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

// openBlock reads a block's meta; its data is read on demand.
func openBlock(dir string) (*block, error) {
	raw, err := os.ReadFile(filepath.Join(dir, blockMetaFile))
	if err != nil {
		return nil, fmt.Errorf("read block meta: %w", err)
	}
	b := &block{dir: dir}
	if err := json.Unmarshal(raw, &b.meta); err != nil {
		return nil, fmt.Errorf("parse block meta %s: %w", dir, err)
	}
	if b.meta.Version != blockVersion {
		return nil, fmt.Errorf("block %s: unsupported version %d", dir, b.meta.Version)
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

// readSection reads and decompresses one section of the data file.
func (b *block) readSection(f *os.File, sec section) ([]byte, error) {
	if sec.Len < 0 || sec.Len > 1<<31 {
		return nil, fmt.Errorf("block %s: bad section length %d", b.dir, sec.Len)
	}
	raw := make([]byte, sec.Len)
	if _, err := f.ReadAt(raw, sec.Off); err != nil {
		return nil, fmt.Errorf("read block %s: %w", b.dir, err)
	}
	_, dec := zstdCodecs()
	buf, err := dec.DecodeAll(raw, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress block %s: %w", b.dir, err)
	}
	return buf, nil
}

// load returns a table with the block's symbols (from cache when possible) and
// only the series sel selects.
func (b *block) load(sel *Selector, cache *blockCache) (*table, error) {
	f, err := os.Open(filepath.Join(b.dir, blockDataFile))
	if err != nil {
		return nil, fmt.Errorf("open block data: %w", err)
	}
	defer f.Close()
	syms, ok := cache.get(b.dir)
	if !ok {
		buf, err := b.readSection(f, b.meta.Symbols)
		if err != nil {
			return nil, err
		}
		if syms, err = decodeSymbols(buf); err != nil {
			return nil, fmt.Errorf("decode block %s: %w", b.dir, err)
		}
		cache.put(b.dir, syms)
	}
	t := &table{names: syms.names, nodes: syms.nodes, minT: 1<<63 - 1, maxT: -1 << 63}
	for i := range b.meta.Series {
		sm := &b.meta.Series[i]
		if !sel.matches(sm.ls, sm.MinT, sm.MaxT) {
			continue
		}
		buf, err := b.readSection(f, sm.Data)
		if err != nil {
			return nil, err
		}
		profiles, err := decodeProfiles(buf, len(t.nodes), len(t.names))
		if err != nil {
			return nil, fmt.Errorf("decode block %s: %w", b.dir, err)
		}
		s := &series{labels: sm.ls, typeID: sm.ls.Get(LabelProfileType), minT: 1<<63 - 1, maxT: -1 << 63}
		for _, p := range profiles {
			t.addProfile(s, p)
		}
		t.series = append(t.series, s)
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

// encodeSymbols writes the names and the stack tree.
func encodeSymbols(t *table) []byte {
	dst := []byte{blockCodecVerson}
	dst = binary.AppendUvarint(dst, uint64(len(t.names)))
	for _, n := range t.names {
		dst = profile.AppendString(dst, n)
	}
	dst = binary.AppendUvarint(dst, uint64(len(t.nodes)))
	for _, n := range t.nodes {
		dst = binary.AppendUvarint(dst, uint64(n.parent))
		dst = binary.AppendUvarint(dst, uint64(n.name))
	}
	return dst
}

func decodeSymbols(buf []byte) (*table, error) {
	d := profile.NewDecoder(buf)
	if v := d.Byte(); v != blockCodecVerson {
		if d.Err() != nil {
			return nil, d.Err()
		}
		return nil, fmt.Errorf("unknown symbols version %d", v)
	}
	t := &table{}
	t.names = make([]string, d.Count(1))
	for i := range t.names {
		t.names[i] = d.String()
	}
	t.nodes = make([]node, d.Count(2))
	for i := range t.nodes {
		n := node{parent: d.Uint32(), name: d.Uint32()}
		if i > 0 && (int(n.parent) >= i || int(n.name) >= len(t.names)) {
			return nil, fmt.Errorf("node %d: bad parent %d or name %d", i, n.parent, n.name)
		}
		t.nodes[i] = n
	}
	if d.Err() != nil {
		return nil, d.Err()
	}
	if len(t.nodes) == 0 || len(t.names) == 0 {
		return nil, fmt.Errorf("no root node")
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", d.Len())
	}
	return t, nil
}

// encodeProfiles writes one series' profiles: times delta-encoded, sample nodes
// delta-encoded (they are sorted).
func encodeProfiles(ps []profileRec) []byte {
	dst := binary.AppendUvarint(nil, uint64(len(ps)))
	var prevT int64
	for _, p := range ps {
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
	return dst
}

// decodeProfiles reads encodeProfiles' output, checking node and name references
// against the block's symbol counts.
func decodeProfiles(buf []byte, nodes, names int) ([]profileRec, error) {
	d := profile.NewDecoder(buf)
	profiles := make([]profileRec, d.Count(2))
	var prevT int64
	for i := range profiles {
		p := &profiles[i]
		p.t = prevT + d.Varint()
		prevT = p.t
		p.samples = make([]sampleRec, d.Count(4))
		var prevNode uint32
		for j := range p.samples {
			x := &p.samples[j]
			x.node = prevNode + d.Uint32()
			prevNode = x.node
			x.value = d.Varint()
			x.span = d.Uvarint()
			x.trace = d.Uint32()
			if int(x.node) >= nodes || int(x.trace) >= names {
				return nil, fmt.Errorf("sample refers to node %d / name %d out of range", x.node, x.trace)
			}
			p.total = addSat(p.total, x.value)
		}
	}
	if d.Err() != nil {
		return nil, d.Err()
	}
	if d.Len() != 0 {
		return nil, fmt.Errorf("%d trailing bytes", d.Len())
	}
	return profiles, nil
}
