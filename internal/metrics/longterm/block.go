package longterm

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"sync"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"github.com/prometheus/prometheus/tsdb/chunkenc"
	"github.com/prometheus/prometheus/tsdb/chunks"
	"github.com/prometheus/prometheus/tsdb/fileutil"
	"github.com/prometheus/prometheus/tsdb/index"
)

// A long-term block is a directory named by its ULID:
//
//	index      Prometheus's block index (symbols, series, postings); each
//	           series has one chunk meta whose Ref is its column's offset in data
//	data       magic | per series: uvarint len(column) | column | crc32c(column)
//	meta.json  Meta
//
// It is written as <ULID>.tmp and renamed when complete and fsync'd, so a
// directory without the suffix is always whole; a .tmp left by a crash is
// removed at open.
const (
	indexFile = "index"
	dataFile  = "data"
	metaFile  = "meta.json"
	tmpSuffix = ".tmp"

	dataMagic = "VLT1"
)

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// ErrHistograms is returned when a source block holds native histogram
// samples: the long-term format keeps floats only, so such blocks stay in
// the TSDB.
var ErrHistograms = errors.New("block holds native histograms")

// Meta describes a long-term block. MaxTime is inclusive.
type Meta struct {
	ULID       ulid.ULID   `json:"ulid"`
	MinTime    int64       `json:"minTime"`
	MaxTime    int64       `json:"maxTime"`
	NumSeries  uint64      `json:"numSeries"`
	NumSamples uint64      `json:"numSamples"`
	Sources    []ulid.ULID `json:"sources"` // the TSDB blocks it replaces
	Version    int         `json:"version"`
}

// block is an open long-term block. readers counts the queriers using it, so
// it is unmapped only after the last one closes.
type block struct {
	dir     string
	meta    Meta
	ix      *index.Reader
	data    *fileutil.MmapFile
	readers sync.WaitGroup
}

func openBlock(dir string) (*block, error) {
	b := &block{dir: dir}
	raw, err := os.ReadFile(filepath.Join(dir, metaFile))
	if err != nil {
		return nil, fmt.Errorf("read long-term block meta: %w", err)
	}
	if err := json.Unmarshal(raw, &b.meta); err != nil {
		return nil, fmt.Errorf("parse long-term block meta %s: %w", dir, err)
	}
	if b.ix, err = index.NewFileReader(filepath.Join(dir, indexFile), index.DecodePostingsRaw); err != nil {
		return nil, fmt.Errorf("open long-term block index %s: %w", dir, err)
	}
	if b.data, err = fileutil.OpenMmapFile(filepath.Join(dir, dataFile)); err != nil {
		_ = b.ix.Close()
		return nil, fmt.Errorf("open long-term block data %s: %w", dir, err)
	}
	if string(b.data.Bytes()[:min(len(dataMagic), len(b.data.Bytes()))]) != dataMagic {
		_ = b.close()
		return nil, fmt.Errorf("long-term block data %s: bad magic", dir)
	}
	return b, nil
}

func (b *block) close() error {
	return errors.Join(b.ix.Close(), b.data.Close())
}

// column returns the bytes of the column at off, checked against its CRC.
func (b *block) column(off uint64) ([]byte, error) {
	data := b.data.Bytes()
	if off >= uint64(len(data)) {
		return nil, fmt.Errorf("long-term block %s: column offset %d out of range", b.dir, off)
	}
	n, k := binary.Uvarint(data[off:])
	start := off + uint64(k)
	if k <= 0 || n > uint64(len(data)) || start+n+4 > uint64(len(data)) {
		return nil, fmt.Errorf("long-term block %s: corrupt column at %d", b.dir, off)
	}
	col := data[start : start+n]
	if crc32.Checksum(col, castagnoli) != binary.BigEndian.Uint32(data[start+n:]) {
		return nil, fmt.Errorf("long-term block %s: checksum mismatch at %d", b.dir, off)
	}
	return col, nil
}

// writeBlock rewrites the TSDB blocks srcs (tombstones applied, overlaps
// merged) into a new long-term block under parent, and returns its meta.
func writeBlock(ctx context.Context, parent string, srcs []*tsdb.Block) (Meta, error) {
	m := Meta{ULID: ulid.Make(), Version: 1}
	for _, s := range srcs {
		if s.Meta().Stats.NumHistogramSamples > 0 {
			return m, fmt.Errorf("%s: %w", s.Meta().ULID, ErrHistograms)
		}
		m.Sources = append(m.Sources, s.Meta().ULID)
	}
	tmp := filepath.Join(parent, m.ULID.String()+tmpSuffix)
	if err := os.MkdirAll(tmp, 0o755); err != nil {
		return m, fmt.Errorf("create long-term block dir: %w", err)
	}
	err := writeBlockFiles(ctx, tmp, srcs, &m)
	if err == nil {
		err = finishBlock(tmp, filepath.Join(parent, m.ULID.String()), m)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return m, err
	}
	return m, nil
}

func writeBlockFiles(ctx context.Context, dir string, srcs []*tsdb.Block, m *Meta) (err error) {
	var queriers []storage.Querier
	defer func() {
		for _, q := range queriers {
			err = errors.Join(err, q.Close())
		}
	}()
	var sets []storage.SeriesSet
	all := labels.MustNewMatcher(labels.MatchEqual, "", "") // every series
	for _, s := range srcs {
		q, err := tsdb.NewBlockQuerier(s, s.Meta().MinTime, s.Meta().MaxTime-1)
		if err != nil {
			return fmt.Errorf("query block %s: %w", s.Meta().ULID, err)
		}
		queriers = append(queriers, q)
		sets = append(sets, q.Select(ctx, true, nil, all))
	}
	iw, err := index.NewWriter(ctx, filepath.Join(dir, indexFile))
	if err != nil {
		return fmt.Errorf("create long-term index: %w", err)
	}
	defer func() {
		if iw != nil {
			_ = iw.Close()
		}
	}()
	if err := addSymbols(iw, srcs); err != nil {
		return err
	}
	df, err := os.Create(filepath.Join(dir, dataFile))
	if err != nil {
		return fmt.Errorf("create long-term data: %w", err)
	}
	defer df.Close()
	dw := &dataWriter{w: bufio.NewWriterSize(df, 1<<20)}
	dw.write([]byte(dataMagic))
	if err := writeSeries(storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge), iw, dw, m); err != nil {
		return err
	}
	if err := dw.flush(); err != nil {
		return fmt.Errorf("write long-term data: %w", err)
	}
	if err := df.Sync(); err != nil {
		return fmt.Errorf("sync long-term data: %w", err)
	}
	closeErr := iw.Close()
	iw = nil
	if closeErr != nil {
		return fmt.Errorf("write long-term index: %w", closeErr)
	}
	return nil
}

// addSymbols gives the index writer the sorted union of the sources' symbols.
func addSymbols(iw *index.Writer, srcs []*tsdb.Block) error {
	it := index.NewStringListIter(nil)
	for _, s := range srcs {
		ir, err := s.Index()
		if err != nil {
			return fmt.Errorf("read block index: %w", err)
		}
		defer ir.Close()
		it = tsdb.NewMergedStringIter(it, ir.Symbols())
	}
	for it.Next() {
		if err := iw.AddSymbol(it.At()); err != nil {
			return fmt.Errorf("add symbol: %w", err)
		}
	}
	return it.Err()
}

func writeSeries(ss storage.SeriesSet, iw *index.Writer, dw *dataWriter, m *Meta) error {
	var (
		ts  []int64
		vs  []float64
		it  chunkenc.Iterator
		col []byte
		ref storage.SeriesRef
	)
	m.MinTime, m.MaxTime = 1<<63-1, -1<<63
	for ss.Next() {
		s := ss.At()
		ts, vs = ts[:0], vs[:0]
		it = s.Iterator(it)
		for vt := it.Next(); vt != chunkenc.ValNone; vt = it.Next() {
			if vt != chunkenc.ValFloat {
				return ErrHistograms
			}
			t, v := it.At()
			ts, vs = append(ts, t), append(vs, v)
		}
		if err := it.Err(); err != nil {
			return fmt.Errorf("read series %s: %w", s.Labels(), err)
		}
		if len(ts) == 0 {
			continue // wholly deleted by tombstones
		}
		col = EncodeColumn(col[:0], ts, vs)
		off := dw.column(col)
		ref++
		meta := chunks.Meta{Ref: chunks.ChunkRef(off), MinTime: ts[0], MaxTime: ts[len(ts)-1]}
		if err := iw.AddSeries(ref, s.Labels(), meta); err != nil {
			return fmt.Errorf("index series %s: %w", s.Labels(), err)
		}
		m.NumSeries++
		m.NumSamples += uint64(len(ts))
		m.MinTime, m.MaxTime = min(m.MinTime, ts[0]), max(m.MaxTime, ts[len(ts)-1])
	}
	return ss.Err()
}

// dataWriter appends columns to the data file, counting the offset.
type dataWriter struct {
	w   *bufio.Writer
	off uint64
	err error
}

func (d *dataWriter) write(p []byte) {
	if d.err == nil {
		_, d.err = d.w.Write(p)
		d.off += uint64(len(p))
	}
}

func (d *dataWriter) column(col []byte) uint64 {
	off := d.off
	d.write(binary.AppendUvarint(nil, uint64(len(col))))
	d.write(col)
	d.write(binary.BigEndian.AppendUint32(nil, crc32.Checksum(col, castagnoli)))
	return off
}

func (d *dataWriter) flush() error {
	if d.err != nil {
		return d.err
	}
	return d.w.Flush()
}

// finishBlock writes meta.json, syncs the directory and renames it into place.
func finishBlock(tmp, final string, m Meta) error {
	raw, err := json.MarshalIndent(m, "", "\t")
	if err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(tmp, metaFile))
	if err != nil {
		return fmt.Errorf("write long-term block meta: %w", err)
	}
	_, err = f.Write(raw)
	if err == nil {
		err = f.Sync()
	}
	if err = errors.Join(err, f.Close()); err != nil {
		return fmt.Errorf("write long-term block meta: %w", err)
	}
	d, err := os.Open(tmp)
	if err != nil {
		return err
	}
	err = errors.Join(d.Sync(), d.Close())
	if err != nil {
		return fmt.Errorf("sync long-term block dir: %w", err)
	}
	if err := fileutil.Rename(tmp, final); err != nil {
		return fmt.Errorf("publish long-term block: %w", err)
	}
	return nil
}
