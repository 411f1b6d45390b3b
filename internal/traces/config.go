// Package traces is Vispyr's trace store: a write-ahead log for durability, an
// in-memory head indexed by trace ID for recent spans, and immutable Parquet blocks
// behind an object store, with compaction and retention. It serves trace lookup by
// ID, TraceQL search and tag autocomplete to the Tempo-compatible API in tempoapi.
package traces

import (
	"errors"
	"fmt"
	"time"

	"github.com/vispyr/vispyr/internal/traces/backend"
)

// Config configures the store. Zero values are replaced by Defaults.
type Config struct {
	// BlockCutInterval is the longest time spans stay in the head (and WAL) before
	// they are written to a block.
	BlockCutInterval time.Duration `yaml:"block_cut_interval"`
	// MaxBlockSpans cuts the head to a block early when it holds this many spans.
	// While a cut head is written the next one fills, so under sustained load the
	// store holds about twice this many spans (~350 bytes each) in memory.
	MaxBlockSpans int `yaml:"max_block_spans"`
	// Retention deletes blocks whose newest span ended longer ago than this.
	Retention time.Duration `yaml:"retention"`
	// CompactionInterval is how often small blocks are merged.
	CompactionInterval time.Duration `yaml:"compaction_interval"`
	// CompactionMaxSpans bounds the size of a compacted block. Compaction streams
	// its inputs, so its memory is the encoded output (~60 bytes per span), not
	// the spans.
	CompactionMaxSpans int `yaml:"compaction_max_block_spans"`
	// MaxHeadBytes is the memory budget of spans not yet in blocks (the head and
	// cut heads still being written), counted as the heap they really hold; over
	// it ConsumeTraces answers pipeline.ErrOverloaded so clients back off. The Go
	// runtime needs about as much again as headroom between collections.
	MaxHeadBytes int64 `yaml:"max_head_bytes"`
	// WALSegmentSize is when a WAL segment file is closed and a new one started.
	WALSegmentSize int64 `yaml:"wal_segment_size"`
	// MaxSpansPerTrace caps the spans the head keeps for one trace; more are
	// refused and reported as partial success, so one runaway trace cannot eat
	// the head.
	MaxSpansPerTrace int `yaml:"max_spans_per_trace"`
	// MaxAttributeBytes truncates longer string attribute values, as Tempo's
	// max_attribute_bytes does.
	MaxAttributeBytes int `yaml:"max_attribute_bytes"`
	// IndexCacheBytes bounds the memory that blocks' trace indexes and tag postings
	// take once read (about 45 bytes per trace); the least recently used are read
	// again when needed.
	IndexCacheBytes int64 `yaml:"index_cache_bytes"`
	// SearchTimeout ends a TraceQL search or metrics query that runs longer,
	// answered 504 as Tempo's query timeout is, so one broad query over a long
	// retention cannot hold a core and its memory for ever.
	SearchTimeout time.Duration `yaml:"search_timeout"`
	// QueryMaxMemoryBytes caps what one TraceQL metrics query may hold (its
	// series over the step grid, histograms, exemplars, the traces it has
	// seen), charged before each is built and drawn from
	// metrics.query_memory_bytes, the budget all running queries share; past
	// it the query is refused with 400 naming this limit.
	QueryMaxMemoryBytes int64 `yaml:"query_max_memory_bytes"`
	// IngestionSlack caps a block's newest span end at the time it is cut plus
	// this, as Tempo's ingestion_time_range_slack does, so a span stamped years
	// ahead cannot keep its block from retention; the span is stored as sent.
	IngestionSlack time.Duration `yaml:"ingestion_time_range_slack"`
	// Storage is where blocks live.
	Storage backend.Config `yaml:"storage"`
}

// Defaults fills every unset field: the one place defaults are defined.
func (c *Config) Defaults() {
	if c.BlockCutInterval == 0 {
		c.BlockCutInterval = 5 * time.Minute
	}
	// 150k spans (~50 MB) per cut: a cut is written in well under a second, and
	// since the next cut waits for it, blocks grow by themselves when ingest outruns
	// the writer (200-300k spans at 300k spans/s on 2 cores).
	if c.SearchTimeout == 0 {
		c.SearchTimeout = 30 * time.Second // Tempo's default query timeout
	}
	if c.IngestionSlack == 0 {
		c.IngestionSlack = 2 * time.Minute // Tempo's default
	}
	if c.QueryMaxMemoryBytes == 0 {
		c.QueryMaxMemoryBytes = 1 << 30 // as metrics.query_max_memory_bytes
	}
	if c.MaxBlockSpans == 0 {
		c.MaxBlockSpans = 150_000
	}
	if c.Retention == 0 {
		c.Retention = 720 * time.Hour
	}
	if c.CompactionInterval == 0 {
		c.CompactionInterval = 5 * time.Minute
	}
	if c.CompactionMaxSpans == 0 {
		c.CompactionMaxSpans = 1_000_000
	}
	// 192 MiB holds head + cut head at full speed (~150 MiB at 300k spans/s); when
	// block writes stall (a slow bucket) writes are refused there instead of piling
	// up. With the Go GC's headroom the trace store stays near 500 MB.
	if c.MaxHeadBytes == 0 {
		c.MaxHeadBytes = 192 << 20
	}
	if c.WALSegmentSize == 0 {
		c.WALSegmentSize = 128 << 20
	}
	if c.MaxSpansPerTrace == 0 {
		c.MaxSpansPerTrace = 50_000
	}
	if c.MaxAttributeBytes == 0 {
		c.MaxAttributeBytes = 2048
	}
	if c.IndexCacheBytes == 0 {
		c.IndexCacheBytes = 128 << 20
	}
	c.Storage.Defaults()
}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.BlockCutInterval < time.Second:
		return fmt.Errorf("block_cut_interval: %v is below 1s", c.BlockCutInterval)
	case c.MaxBlockSpans < 1:
		return errors.New("max_block_spans: must be positive")
	case c.Retention < time.Minute:
		return fmt.Errorf("retention: %v is below 1m", c.Retention)
	case c.IngestionSlack < 0:
		return fmt.Errorf("ingestion_time_range_slack: %v is negative", c.IngestionSlack)
	case c.SearchTimeout < 0:
		return fmt.Errorf("search_timeout: %v is negative", c.SearchTimeout)
	case c.QueryMaxMemoryBytes < 1<<20:
		return fmt.Errorf("query_max_memory_bytes: %d is below 1MiB", c.QueryMaxMemoryBytes)
	case c.CompactionInterval < time.Second:
		return fmt.Errorf("compaction_interval: %v is below 1s", c.CompactionInterval)
	case c.CompactionMaxSpans < c.MaxBlockSpans:
		return fmt.Errorf("compaction_max_block_spans: %d is below max_block_spans %d", c.CompactionMaxSpans, c.MaxBlockSpans)
	case c.MaxHeadBytes < 1<<20:
		return fmt.Errorf("max_head_bytes: %d is below 1MiB", c.MaxHeadBytes)
	case c.WALSegmentSize < 1<<20:
		return fmt.Errorf("wal_segment_size: %d is below 1MiB", c.WALSegmentSize)
	case c.MaxSpansPerTrace < 1:
		return errors.New("max_spans_per_trace: must be positive")
	case c.IndexCacheBytes < 1<<20:
		return fmt.Errorf("index_cache_bytes: %d is below 1MiB", c.IndexCacheBytes)
	case c.MaxAttributeBytes < 64:
		return fmt.Errorf("max_attribute_bytes: %d is below 64", c.MaxAttributeBytes)
	}
	if err := c.Storage.Validate(); err != nil {
		return err
	}
	return nil
}
