package longterm

import (
	"bufio"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"time"

	"github.com/oklog/ulid/v2"
	"github.com/prometheus/common/model"
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
//	downsample-<res>  when downsampled (Meta.Resolutions; downsample.go):
//	           magic | per series: uvarint len(payload) | payload | crc32c(payload) |
//	           per series: 8 bytes column offset in data, 8 bytes payload offset | 8 bytes count
//
// It is written as <ULID>.tmp and renamed when complete and fsync'd, so a
// directory without the suffix is always whole; a .tmp left by a crash is
// removed at open.
const (
	indexFile = "index"
	dataFile  = "data"
	metaFile  = "meta.json"
	tmpSuffix = ".tmp"

	dataMagic       = "VLT1"
	downsampleMagic = "VLD1"
)

// downsampleFile is the name of the file of a resolution's aggregates.
func downsampleFile(res int64) string {
	return "downsample-" + model.Duration(time.Duration(res)*time.Millisecond).String()
}

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
	// Resolutions are the downsampled resolutions kept, in milliseconds.
	Resolutions []int64 `json:"resolutions,omitempty"`
}

// block is an open long-term block. readers counts the queriers using it, so
// it is unmapped only after the last one closes.
type block struct {
	dir        string
	meta       Meta
	ix         *index.Reader
	data       *fileutil.MmapFile
	downsample []*downsampled // coarsest first
	readers    sync.WaitGroup
}

// downsampled is an open downsample file: the aggregates at one resolution.
type downsampled struct {
	res   int64
	file  *fileutil.MmapFile
	table []byte // per series: column offset, payload offset
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
	for _, res := range b.meta.Resolutions {
		d, err := openDownsampled(filepath.Join(dir, downsampleFile(res)), res)
		if err != nil {
			_ = b.close()
			return nil, err
		}
		b.downsample = append(b.downsample, d)
	}
	slices.SortFunc(b.downsample, func(x, y *downsampled) int { return cmp.Compare(y.res, x.res) })
	return b, nil
}

func openDownsampled(path string, res int64) (*downsampled, error) {
	f, err := fileutil.OpenMmapFile(path)
	if err != nil {
		return nil, fmt.Errorf("open long-term downsample file: %w", err)
	}
	b := f.Bytes()
	if len(b) < len(downsampleMagic)+8 || string(b[:len(downsampleMagic)]) != downsampleMagic {
		_ = f.Close()
		return nil, fmt.Errorf("long-term downsample file %s: bad magic", path)
	}
	n := binary.BigEndian.Uint64(b[len(b)-8:])
	if n > uint64(len(b)-8-len(downsampleMagic))/16 { // the table fits after the magic
		_ = f.Close()
		return nil, fmt.Errorf("long-term downsample file %s: corrupt table", path)
	}
	end := uint64(len(b)) - 8
	return &downsampled{res: res, file: f, table: b[end-16*n : end]}, nil
}

func (b *block) close() error {
	errs := []error{b.ix.Close(), b.data.Close()}
	for _, d := range b.downsample {
		errs = append(errs, d.file.Close())
	}
	return errors.Join(errs...)
}

// payload returns the aggregates of the series whose raw column is at off.
func (d *downsampled) payload(off uint64) ([]byte, error) {
	n := len(d.table) / 16
	i := sort.Search(n, func(i int) bool { return binary.BigEndian.Uint64(d.table[16*i:]) >= off })
	if i == n || binary.BigEndian.Uint64(d.table[16*i:]) != off {
		return nil, fmt.Errorf("long-term downsample: no series at %d", off)
	}
	return checkedRecord(d.file.Bytes(), binary.BigEndian.Uint64(d.table[16*i+8:]))
}

// column returns the bytes of the column at off, checked against its CRC.
func (b *block) column(off uint64) ([]byte, error) {
	col, err := checkedRecord(b.data.Bytes(), off)
	if err != nil {
		return nil, fmt.Errorf("long-term block %s: %w", b.dir, err)
	}
	return col, nil
}

// checkedRecord returns the record (uvarint len | bytes | crc32c) at off
// in data, checked against its CRC.
func checkedRecord(data []byte, off uint64) ([]byte, error) {
	if off >= uint64(len(data)) {
		return nil, fmt.Errorf("column offset %d out of range", off)
	}
	n, k := binary.Uvarint(data[off:])
	start := off + uint64(k)
	if k <= 0 || n > uint64(len(data)) || start+n+4 > uint64(len(data)) {
		return nil, fmt.Errorf("corrupt column at %d", off)
	}
	col := data[start : start+n]
	if crc32.Checksum(col, castagnoli) != binary.BigEndian.Uint32(data[start+n:]) {
		return nil, fmt.Errorf("checksum mismatch at %d", off)
	}
	return col, nil
}

// writeBlock rewrites the TSDB blocks srcs (tombstones applied, overlaps
// merged) into a new long-term block under parent, downsampled at the
// resolutions (milliseconds), and returns its meta.
func writeBlock(ctx context.Context, parent string, srcs []*tsdb.Block, resolutions []int64) (Meta, error) {
	m := Meta{ULID: ulid.Make(), Version: 1, Resolutions: resolutions}
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
	dw, err := createData(filepath.Join(dir, dataFile), dataMagic)
	if err != nil {
		return err
	}
	defer dw.f.Close()
	var dss []*downsampleWriter
	for _, res := range m.Resolutions {
		d, err := createData(filepath.Join(dir, downsampleFile(res)), downsampleMagic)
		if err != nil {
			return err
		}
		defer d.f.Close()
		dss = append(dss, &downsampleWriter{res: res, w: d})
	}
	if err := writeSeries(storage.NewMergeSeriesSet(sets, 0, storage.ChainedSeriesMerge), iw, dw, dss, m); err != nil {
		return err
	}
	for _, d := range dss {
		d.w.write(d.table)
		d.w.write(binary.BigEndian.AppendUint64(nil, uint64(len(d.table)/16)))
		if err := d.w.sync(); err != nil {
			return err
		}
	}
	if err := dw.sync(); err != nil {
		return err
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

// downsampleWriter writes one resolution's aggregates and their table.
type downsampleWriter struct {
	res   int64
	w     *dataWriter
	table []byte
}

func writeSeries(ss storage.SeriesSet, iw *index.Writer, dw *dataWriter, dss []*downsampleWriter, m *Meta) error {
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
		for _, d := range dss {
			d.table = binary.BigEndian.AppendUint64(d.table, off)
			d.table = binary.BigEndian.AppendUint64(d.table, d.w.column(appendAggregates(nil, downsample(ts, vs, d.res))))
		}
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

// dataWriter appends columns to a data file, counting the offset.
type dataWriter struct {
	f   *os.File
	w   *bufio.Writer
	off uint64
	err error
}

// createData creates a data file starting with magic.
func createData(path, magic string) (*dataWriter, error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("create long-term data: %w", err)
	}
	d := &dataWriter{f: f, w: bufio.NewWriterSize(f, 1<<20)}
	d.write([]byte(magic))
	return d, nil
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

// sync flushes and fsyncs the file.
func (d *dataWriter) sync() error {
	if d.err == nil {
		d.err = d.w.Flush()
	}
	if d.err == nil {
		d.err = d.f.Sync()
	}
	if d.err != nil {
		return fmt.Errorf("write long-term data %s: %w", d.f.Name(), d.err)
	}
	return nil
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
