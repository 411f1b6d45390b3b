// Package logs is the embedded log store: streams by label set per tenant,
// time-partitioned compressed chunks, a postings index of stream labels and a
// per-chunk filter that lets line filters skip chunks.
//
// This file is the contract between the store and its readers (the LogQL engine
// and the Loki query API in logs/logql and logs/lokiapi): they depend on Querier
// only, never on the store's internals.
package logs

import (
	"context"
	"errors"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

// Entry is one log line with its structured metadata (trace_id, span_id,
// detected_level, OTLP log attributes). Timestamp is in Unix nanoseconds.
type Entry = logpush.Entry

// Stream is the entries of one label set.
type Stream = logpush.Stream

// Direction orders the entries Select returns.
type Direction int

const (
	// Backward returns the newest entries first (Loki's default for log queries).
	Backward Direction = iota
	// Forward returns the oldest entries first.
	Forward
)

// FilterOp is a line filter's operator, as LogQL spells them.
type FilterOp int

const (
	Contains      FilterOp = iota // |= "s"
	NotContains                   // != "s"
	MatchRegex                    // |~ "re"  (RE2 syntax, unanchored, as Loki)
	NotMatchRegex                 // !~ "re"
)

// LineFilter is one line filter pushed down to the store. The store applies it
// exactly (every entry returned passes it), and may use it to skip whole chunks.
type LineFilter struct {
	Op    FilterOp
	Value string
}

// SelectParams says which entries Select returns.
type SelectParams struct {
	// Matchers select streams by their labels (a LogQL stream selector). At least
	// one must not match the empty string, as Loki requires.
	Matchers []*labels.Matcher
	// Start and End bound entry timestamps, in Unix nanoseconds: [Start, End).
	Start, End int64
	Direction  Direction
	// Limit caps the entries returned across all streams (0: no limit). Pass it
	// only when nothing after the store drops lines (no parser or label filter).
	Limit int
	// LineFilters all must pass (AND), applied in order.
	LineFilters []LineFilter
}

// Iterator yields entries across streams, merged in the requested direction
// (ties: by stream labels). Use it as
//
//	for it.Next() { lbls, e := it.At() ... }; err := it.Err(); it.Close()
type Iterator interface {
	Next() bool
	// At returns the current entry and its stream's labels. Both stay valid after
	// Next (the store hands out immutable data), so callers may keep them.
	At() (labels.Labels, Entry)
	Err() error
	Close() error
}

// Stats is what Loki's /index/stats answers for a selector and range.
type Stats struct {
	Streams, Chunks, Entries, Bytes uint64
}

// VolumeParams selects what Volume measures. Step 0 gives one bucket for the
// whole range; otherwise buckets start at Start, Start+Step, ...
type VolumeParams struct {
	Matchers   []*labels.Matcher
	Start, End int64 // Unix nanoseconds, [Start, End)
	Step       int64 // nanoseconds
}

// StreamVolume is one stream's volume, bucketed by VolumeParams.Step. Buckets with
// no data are left out. The engine aggregates by target labels for /index/volume
// and /index/volume_range.
type StreamVolume struct {
	Labels  labels.Labels
	Buckets []VolumeBucket
}

// VolumeBucket is the size of a stream's lines in [T, T+Step).
type VolumeBucket struct {
	T       int64 // bucket start, Unix nanoseconds
	Bytes   uint64
	Entries uint64
}

// Querier reads the log store. Every method is scoped to one tenant and safe for
// concurrent use. Start/End are Unix nanoseconds, [Start, End). Errors wrapping
// ErrInvalidQuery mean the request can never succeed (answer 400).
type Querier interface {
	// Select returns the entries of matching streams in [Start, End), in
	// p.Direction order, up to p.Limit, every one passing p.LineFilters.
	Select(ctx context.Context, tenant string, p SelectParams) (Iterator, error)
	// Labels returns the sorted label names of streams with entries in range that
	// match matchers (all streams when matchers is empty).
	Labels(ctx context.Context, tenant string, start, end int64, matchers []*labels.Matcher) ([]string, error)
	// LabelValues returns the sorted values of label name in such streams.
	LabelValues(ctx context.Context, tenant, name string, start, end int64, matchers []*labels.Matcher) ([]string, error)
	// Series returns the label sets of such streams, sorted.
	Series(ctx context.Context, tenant string, start, end int64, matchers []*labels.Matcher) ([]labels.Labels, error)
	// Stats sums streams, chunks, entries and line bytes of such streams in range.
	Stats(ctx context.Context, tenant string, start, end int64, matchers []*labels.Matcher) (Stats, error)
	// Volume returns the bytes and entries of such streams, bucketed by p.Step.
	Volume(ctx context.Context, tenant string, p VolumeParams) ([]StreamVolume, error)
	// Tail delivers the entries pushed from now on to matching streams, one
	// logpush.Stream per stream per push, until ctx ends (then the channel is
	// closed). A reader that falls behind loses entries: dropped returns
	// those lost since its last call (up to MaxTailDropped of them), each
	// under the labels keep gives it; entries keep refuses are not reported.
	// The store calls keep one call at a time; a nil keep keeps every entry
	// under its stream's labels.
	Tail(ctx context.Context, tenant string, matchers []*labels.Matcher, keep TailFilter) (entries <-chan Stream, dropped func() []DroppedEntry, err error)
}

// TailFilter says whether a live tail wants an entry and under which labels
// it would show it.
type TailFilter func(stream labels.Labels, e Entry) (labels.Labels, bool)

// DroppedEntry is an entry a live tail lost because its reader fell behind.
type DroppedEntry struct {
	Labels    labels.Labels
	Timestamp int64
}

// MaxTailDropped bounds the dropped entries a tail keeps between two reads,
// as Loki bounds those it sends with the next tail response; further ones
// are not reported.
const MaxTailDropped = 1000

// ErrInvalidQuery marks a request that can never succeed (no matcher that
// excludes the empty string, End before Start, a bad regex).
var ErrInvalidQuery = errors.New("invalid query")
