package logs

import (
	"errors"
	"time"
)

// Config configures the log store. Zero values are replaced by Defaults, which
// follow Loki's defaults where Loki has the same knob.
type Config struct {
	// Retention deletes chunks whose newest line is older than this.
	Retention time.Duration `yaml:"retention"`
	// MaxDiskBytes deletes the oldest blocks when the log store's blocks take more
	// than this on disk (0: no size limit).
	MaxDiskBytes int64 `yaml:"max_disk_bytes"`
	// FlushInterval is the longest lines stay only in memory and the WAL before
	// they are written to a block on disk.
	FlushInterval time.Duration `yaml:"flush_interval"`
	// MaxHeadBytes flushes early when lines not yet in blocks take this much
	// (line bytes); twice it, pushes are refused with 429 until the flush is done.
	MaxHeadBytes int64 `yaml:"max_head_bytes"`
	// ChunkBytes cuts a stream's chunk once its lines reach this size.
	ChunkBytes int `yaml:"chunk_bytes"`
	// MaxLineSize refuses longer lines (Loki's max_line_size).
	MaxLineSize int `yaml:"max_line_size"`
	// MaxLabelNamesPerStream refuses streams with more labels (Loki's
	// max_label_names_per_series).
	MaxLabelNamesPerStream int `yaml:"max_label_names_per_stream"`
	// MaxLabelNameLength and MaxLabelValueLength refuse longer label names/values.
	MaxLabelNameLength  int `yaml:"max_label_name_length"`
	MaxLabelValueLength int `yaml:"max_label_value_length"`
	// MaxStreamsPerTenant refuses lines of new streams once a tenant has this many
	// (Loki's max_global_streams_per_user).
	MaxStreamsPerTenant int `yaml:"max_streams_per_tenant"`
	// MaxStructuredMetadataBytes and MaxStructuredMetadataEntries refuse lines with
	// more structured metadata.
	MaxStructuredMetadataBytes   int `yaml:"max_structured_metadata_bytes"`
	MaxStructuredMetadataEntries int `yaml:"max_structured_metadata_entries"`
	// RejectOlderThan refuses lines older than this (Loki's
	// reject_old_samples_max_age); CreationGracePeriod refuses lines further than
	// this in the future.
	RejectOlderThan     time.Duration `yaml:"reject_older_than"`
	CreationGracePeriod time.Duration `yaml:"creation_grace_period"`
	// Query bounds the work of one LogQL query on the Loki query API.
	Query QueryLimits `yaml:"query"`
}

// QueryLimits bound what one query may ask of the log store, with Loki's
// names and defaults.
type QueryLimits struct {
	// MaxEntries is the largest `limit` a log query may ask for (Loki's
	// max_entries_limit_per_query).
	MaxEntries int `yaml:"max_entries"`
	// MaxLength is the longest time range a query may cover (Loki's
	// max_query_length).
	MaxLength time.Duration `yaml:"max_length"`
	// MaxSeries caps the series a metric query returns (Loki's max_query_series).
	MaxSeries int `yaml:"max_series"`
	// Timeout ends a query that runs longer (Loki's query_timeout).
	Timeout time.Duration `yaml:"timeout"`
	// MaxTails caps the live tails open at once per tenant (Loki's
	// max_concurrent_tail_requests).
	MaxTails int `yaml:"max_tails"`
}

// Defaults fills every unset field.
func (c *Config) Defaults() {
	setDur(&c.Retention, 30*24*time.Hour)
	setDur(&c.FlushInterval, 5*time.Minute)
	if c.MaxHeadBytes == 0 {
		c.MaxHeadBytes = 64 << 20
	}
	setInt(&c.ChunkBytes, 2<<20)
	setInt(&c.MaxLineSize, 256<<10)
	setInt(&c.MaxLabelNamesPerStream, 15)
	setInt(&c.MaxLabelNameLength, 1024)
	setInt(&c.MaxLabelValueLength, 2048)
	setInt(&c.MaxStreamsPerTenant, 5000)
	setInt(&c.MaxStructuredMetadataBytes, 64<<10)
	setInt(&c.MaxStructuredMetadataEntries, 128)
	setDur(&c.RejectOlderThan, 7*24*time.Hour)
	setDur(&c.CreationGracePeriod, 10*time.Minute)
	setInt(&c.Query.MaxEntries, 5000)
	setDur(&c.Query.MaxLength, 721*time.Hour)
	setInt(&c.Query.MaxSeries, 500)
	setDur(&c.Query.Timeout, time.Minute)
	setInt(&c.Query.MaxTails, 10)
}

// Validate refuses settings the store cannot run with.
func (c *Config) Validate() error {
	if c.Retention < time.Hour {
		return errors.New("logs.retention must be at least 1h")
	}
	if c.MaxDiskBytes < 0 || c.MaxHeadBytes < 1<<20 {
		return errors.New("logs.max_disk_bytes must be >= 0 and logs.max_head_bytes >= 1MiB")
	}
	if c.ChunkBytes < 1<<10 {
		return errors.New("logs.chunk_bytes must be at least 1KiB")
	}
	return nil
}

func setDur(d *time.Duration, v time.Duration) {
	if *d == 0 {
		*d = v
	}
}

func setInt(i *int, v int) {
	if *i == 0 {
		*i = v
	}
}
