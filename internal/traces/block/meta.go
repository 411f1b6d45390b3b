// Package block writes and reads immutable trace blocks: one Parquet file of spans
// sorted by trace ID, a bloom filter of its trace IDs, an index from trace ID to rows,
// and a meta.json with the time range and a summary used to skip the block in search
// and to answer tag autocomplete without reading spans.
package block

import (
	"encoding/json"
	"fmt"
	"time"
)

// FormatVersion is bumped when the block layout changes incompatibly. Version 1
// blocks (no tags object, a shorter index) are still opened so that the store can
// rewrite them as version 2.
const FormatVersion = 2

// Object names inside a block's directory. meta.json is written last and deleted first,
// so a block is visible only when complete.
const (
	MetaName  = "meta.json"
	DataName  = "data.parquet"
	IndexName = "index"
	BloomName = "bloom"
	TagsName  = "tags"
)

// Meta describes a block.
type Meta struct {
	Format   int    `json:"format"`
	ID       string `json:"id"`
	Tenant   string `json:"tenant"`
	MinStart int64  `json:"minStartUnixNano"`
	MaxEnd   int64  `json:"maxEndUnixNano"`
	Spans    int    `json:"spans"`
	Traces   int    `json:"traces"`
	// SplitTraces counts traces that had spans elsewhere when the block was written.
	SplitTraces int `json:"splitTraces"`
	// Bytes of each object, for size-based decisions and the search metrics.
	DataBytes  int64 `json:"dataBytes"`
	IndexBytes int64 `json:"indexBytes"`
	BloomBytes int64 `json:"bloomBytes"`
	TagsBytes  int64 `json:"tagsBytes,omitempty"`
	// Level is 0 for a block cut from the head, and one more than its inputs' maximum
	// for a compacted block.
	Level   int       `json:"compactionLevel"`
	Created time.Time `json:"created"`
	Summary Summary   `json:"summary"`
}

// Summary is what a block contains, coarsely: enough to skip it for most searches and
// to answer tag autocomplete. Lists are capped; a capped list is marked incomplete.
type Summary struct {
	Services         []string `json:"services"`
	ServicesComplete bool     `json:"servicesComplete"`
	SpanNames        []string `json:"spanNames"`
	NamesComplete    bool     `json:"spanNamesComplete"`
	MaxSpanDuration  int64    `json:"maxSpanDurationNanos"`
	MaxTraceDuration int64    `json:"maxTraceDurationNanos"`
	HasErrors        bool     `json:"hasErrors"`
	// SpanTags and ResourceTags map attribute keys to the values seen.
	SpanTags         map[string]*TagValues `json:"spanTags"`
	ResourceTags     map[string]*TagValues `json:"resourceTags"`
	SpanTagsComplete bool                  `json:"spanTagsComplete"`
	ResTagsComplete  bool                  `json:"resourceTagsComplete"`
}

// TagValues are the distinct scalar values of one attribute key.
type TagValues struct {
	Values []TagValue `json:"values"`
	// Complete is false when values were dropped over the cap or a value was not
	// a scalar (arrays, maps), so the list cannot rule a value out.
	Complete bool `json:"complete"`
}

// TagValue is one value with its TraceQL type: string, int, float, bool.
type TagValue struct {
	Type  string `json:"type"`
	Value string `json:"value"`
}

// Has reports whether the value may be present.
func (t *TagValues) Has(v string) bool {
	if !t.Complete {
		return true
	}
	for _, tv := range t.Values {
		if tv.Value == v {
			return true
		}
	}
	return false
}

// Overlaps reports whether the block holds spans in [start, end] (Unix ns; 0 = open).
func (m *Meta) Overlaps(start, end int64) bool {
	if end > 0 && m.MinStart > end {
		return false
	}
	if start > 0 && m.MaxEnd < start {
		return false
	}
	return true
}

// DecodeMeta parses and checks a meta.json.
func DecodeMeta(b []byte) (*Meta, error) {
	var m Meta
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("decode block meta: %w", err)
	}
	if m.Format != FormatVersion && m.Format != 1 {
		return nil, fmt.Errorf("block %s has format %d, this version reads %d", m.ID, m.Format, FormatVersion)
	}
	return &m, nil
}
