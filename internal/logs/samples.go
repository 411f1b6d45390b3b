package logs

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/prometheus/model/labels"
)

// SampleQuerier is a Querier that can hand out just the timestamps and line
// sizes of entries, for metric queries that only count lines or bytes: no
// line is copied, no entry is built and nothing is merged in time order.
type SampleQuerier interface {
	// SelectSamples calls fn for each chunk or head of every matching stream
	// and each structured metadata set in it with the timestamps (Unix ns) in
	// [p.Start, p.End) and their lines' sizes, the two slices of one length
	// and valid only during the call. Times within a call ascend; calls come
	// in no particular time order.
	// Only entries passing p.LineFilters count; p.Limit must be unset.
	SelectSamples(ctx context.Context, tenant string, p SelectParams, fn SampleFunc) error
}

// SampleFunc receives one run of samples of a stream with metadata meta.
type SampleFunc func(stream, meta labels.Labels, ts []int64, sizes []int32)

// ErrEntriesOnly is SelectSamples's answer from a wrapper whose querier
// cannot summarise: the caller reads entries instead.
var ErrEntriesOnly = errors.New("querier reads entries only")

var _ SampleQuerier = (*Store)(nil)

// sampleBufs recycles the decompression buffer and columns between chunks.
var sampleBufs = sync.Pool{New: func() any { return &sampleBuf{byKey: map[string]int{}} }}

type sampleBuf struct {
	cols   chunkCols
	groups []sampleGroup
	byKey  map[string]int // a metadata record's encoding -> its group
	key    []byte
	sb     labels.ScratchBuilder
}

// sampleGroup is the samples of one metadata set within a chunk.
type sampleGroup struct {
	meta  labels.Labels
	ts    []int64
	sizes []int32
}

// SelectSamples implements SampleQuerier.
func (s *Store) SelectSamples(ctx context.Context, tenantName string, p SelectParams, fn SampleFunc) error {
	if err := checkSelector(p.Matchers); err != nil {
		return err
	}
	if p.End < p.Start {
		return fmt.Errorf("%w: end is before start", ErrInvalidQuery)
	}
	if p.Limit > 0 {
		return fmt.Errorf("%w: select samples takes no limit", ErrInvalidQuery)
	}
	keep, needles, err := compileFilters(p.LineFilters)
	if err != nil {
		return err
	}
	var chunks []sampleChunk
	buf := sampleBufs.Get().(*sampleBuf)
	defer sampleBufs.Put(buf)
	for _, st := range s.tenant(tenantName).selectStreams(p.Matchers) {
		cs, head := st.snapshot(p.Start, p.End)
		for _, c := range cs {
			if mayMatch(c.meta.Filter, needles) {
				chunks = append(chunks, sampleChunk{st.labels, c})
			}
		}
		buf.reset()
		for _, e := range head {
			if e.Timestamp >= p.Start && e.Timestamp < p.End && (keep == nil || keep(e.Line)) {
				buf.key = e.Metadata.Bytes(buf.key[:0])
				g := buf.group(buf.key, func() labels.Labels { return e.Metadata })
				g.ts = append(g.ts, e.Timestamp)
				g.sizes = append(g.sizes, int32(len(e.Line)))
			}
		}
		buf.emit(st.labels, fn)
	}
	return decodeSamples(ctx, chunks, p.Start, p.End, keep, fn)
}

type sampleChunk struct {
	labels labels.Labels
	c      *chunkRef
}

// decodeSamples decompresses chunks on every core (decompression is most of
// a count's work), calling fn for one chunk at a time.
func decodeSamples(ctx context.Context, chunks []sampleChunk, start, end int64, keep func(string) bool, fn SampleFunc) error {
	var (
		mu       sync.Mutex // serialises fn and guards firstErr
		firstErr error
		next     atomic.Int64
		wg       sync.WaitGroup
	)
	failed := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	for range min(runtime.GOMAXPROCS(0), len(chunks)) {
		wg.Go(func() {
			buf := sampleBufs.Get().(*sampleBuf)
			defer sampleBufs.Put(buf)
			for i := int(next.Add(1) - 1); i < len(chunks); i = int(next.Add(1) - 1) {
				if err := ctx.Err(); err != nil {
					failed(err)
					return
				}
				data, err := chunks[i].c.bytes()
				if err == nil {
					err = buf.decode(data, start, end, keep)
				}
				if err != nil {
					failed(err)
					return
				}
				mu.Lock()
				stop := firstErr != nil
				if !stop {
					buf.emit(chunks[i].labels, fn)
				}
				mu.Unlock()
				if stop {
					return
				}
			}
		})
	}
	wg.Wait()
	return firstErr
}

func (b *sampleBuf) reset() {
	clear(b.byKey)
	for i := range b.groups {
		b.groups[i] = sampleGroup{ts: b.groups[i].ts[:0], sizes: b.groups[i].sizes[:0]}
	}
	b.groups = b.groups[:0]
}

// group returns the group of the metadata encoded as key, calling meta to
// make its labels the first time.
func (b *sampleBuf) group(key []byte, meta func() labels.Labels) *sampleGroup {
	i, ok := b.byKey[string(key)] // no allocation: the compiler looks up in place
	if !ok {
		i = len(b.groups)
		b.byKey[string(key)] = i
		if i < cap(b.groups) {
			b.groups = b.groups[:i+1]
		} else {
			b.groups = append(b.groups, sampleGroup{})
		}
		b.groups[i].meta = meta()
	}
	return &b.groups[i]
}

func (b *sampleBuf) emit(stream labels.Labels, fn SampleFunc) {
	for _, g := range b.groups {
		if len(g.ts) > 0 {
			fn(stream, g.meta, g.ts, g.sizes)
		}
	}
}

// decode groups a chunk's entries in [start, end) that pass keep (nil keeps
// all) by metadata set, from the timestamp, length and metadata columns; the
// lines are decompressed only when keep needs them.
func (b *sampleBuf) decode(data []byte, start, end int64, keep func(string) bool) error {
	b.reset()
	c := &b.cols
	if err := c.parse(data); err != nil {
		return err
	}
	lo, hi := c.span(start, end)
	if lo == hi {
		return nil
	}
	var lines string
	if keep != nil {
		raw, err := c.readLines(false)
		if err != nil {
			return err
		}
		lines = unsafe.String(unsafe.SliceData(raw), len(raw)) // read by keep only, before the next chunk reuses raw
	}
	for range c.sets {
		i := len(b.groups)
		if i < cap(b.groups) {
			b.groups = b.groups[:i+1]
		} else {
			b.groups = append(b.groups, sampleGroup{})
		}
	}
	off := 0
	if keep != nil {
		for i := range lo {
			off += int(c.sizes[i])
		}
	}
	for i := lo; i < hi; i++ {
		if keep != nil {
			line := lines[off : off+int(c.sizes[i])]
			off += int(c.sizes[i])
			if !keep(line) {
				continue
			}
		}
		g := &b.groups[c.set[i]]
		g.ts = append(g.ts, c.ts[i])
		g.sizes = append(g.sizes, c.sizes[i])
	}
	for k := range b.groups {
		if len(b.groups[k].ts) > 0 {
			b.groups[k].meta = c.meta(uint32(k), &b.sb)
		}
	}
	return nil
}
