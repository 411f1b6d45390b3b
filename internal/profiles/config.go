package profiles

import (
	"errors"
	"fmt"
	"time"
)

// Config controls the profile store. Zero values are replaced by Defaults.
type Config struct {
	// Retention deletes blocks whose newest profile is older than this.
	Retention time.Duration `yaml:"retention"`
	// MaxDiskBytes deletes the oldest blocks while the store uses more; 0 = no limit.
	MaxDiskBytes int64 `yaml:"max_disk_bytes"`
	// BlockDuration is how long the head collects profiles before it is written as
	// an immutable block (Pyroscope cuts at one hour too).
	BlockDuration time.Duration `yaml:"block_duration"`
	// MaxHeadSamples cuts the head early so memory stays bounded under heavy load.
	MaxHeadSamples int `yaml:"max_head_samples"`
	// MaxPendingBytes bounds encoded batches waiting for the WAL fsync; beyond it
	// Append sheds load with pipeline.ErrOverloaded.
	MaxPendingBytes int64 `yaml:"max_pending_bytes"`
	// BlockCacheSize is how many decoded blocks queries keep in memory.
	BlockCacheSize int `yaml:"block_cache_size"`
	// QueryTimeout ends a merge (flame graph, pprof, diff) or series query
	// that runs longer, answered deadline_exceeded (504).
	QueryTimeout time.Duration `yaml:"query_timeout"`
	// QueryMaxMemoryBytes caps what one query may build (the merged call tree,
	// the series points), charged as each block is merged and drawn from
	// metrics.query_memory_bytes, the budget all running queries share; past
	// it the query is refused with invalid_argument naming this limit.
	QueryMaxMemoryBytes int64 `yaml:"query_max_memory_bytes"`
}

// Defaults fills zero fields. Retention of 30 days matches the rest of Vispyr.
func (c *Config) Defaults() {
	if c.Retention == 0 {
		c.Retention = 30 * 24 * time.Hour
	}
	if c.BlockDuration == 0 {
		c.BlockDuration = time.Hour
	}
	if c.MaxHeadSamples == 0 {
		c.MaxHeadSamples = 5_000_000
	}
	if c.MaxPendingBytes == 0 {
		c.MaxPendingBytes = 256 << 20
	}
	if c.BlockCacheSize == 0 {
		c.BlockCacheSize = 8
	}
	if c.QueryTimeout == 0 {
		c.QueryTimeout = 2 * time.Minute // as metrics.query_timeout
	}
	if c.QueryMaxMemoryBytes == 0 {
		c.QueryMaxMemoryBytes = 1 << 30 // as metrics.query_max_memory_bytes
	}
}

// Validate names the first bad field.
func (c Config) Validate() error {
	var errs []error
	if c.Retention < time.Minute {
		errs = append(errs, fmt.Errorf("retention: %s is below 1m", c.Retention))
	}
	if c.MaxDiskBytes < 0 {
		errs = append(errs, fmt.Errorf("max_disk_bytes: %d is negative", c.MaxDiskBytes))
	}
	if c.BlockDuration < time.Second || c.BlockDuration > 24*time.Hour {
		errs = append(errs, fmt.Errorf("block_duration: %s is outside 1s..24h", c.BlockDuration))
	}
	if c.MaxHeadSamples < 1000 {
		errs = append(errs, fmt.Errorf("max_head_samples: %d is below 1000", c.MaxHeadSamples))
	}
	if c.MaxPendingBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("max_pending_bytes: %d is below 1MiB", c.MaxPendingBytes))
	}
	if c.BlockCacheSize < 1 {
		errs = append(errs, fmt.Errorf("block_cache_size: %d is below 1", c.BlockCacheSize))
	}
	if c.QueryTimeout < 0 {
		errs = append(errs, fmt.Errorf("query_timeout: %s is negative", c.QueryTimeout))
	}
	if c.QueryMaxMemoryBytes < 1<<20 {
		errs = append(errs, fmt.Errorf("query_max_memory_bytes: %d is below 1MiB", c.QueryMaxMemoryBytes))
	}
	return errors.Join(errs...)
}
