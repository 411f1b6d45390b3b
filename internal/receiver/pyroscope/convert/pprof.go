// Package convert turns what profilers send (pprof, folded stacks) into
// profile.Batch, naming profile types the way Pyroscope does.
package convert

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klauspost/compress/gzip"

	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline/profile"
)

// MaxDecompressedBytes bounds a gunzipped pprof so a small zip bomb cannot exhaust
// memory.
const MaxDecompressedBytes = 128 << 20

// ErrTooLarge is returned (wrapped) when a profile exceeds MaxDecompressedBytes.
var ErrTooLarge = errors.New("profile too large")

// Input describes where a profile came from: everything but the profile itself.
type Input struct {
	// Labels become series labels; service_name must be among them.
	Labels map[string]string
	// Name is the __name__ of the profile (process_cpu, memory, wall, ...); when
	// empty it is derived from the sample types as Pyroscope's /ingest does.
	Name string
	// SpyName is the client's spyName (gospy, nodespy, ...), kept as pyroscope_spy.
	SpyName string
	// StartNanos is used when the pprof carries no time.
	StartNanos int64
	// SampleTypeConfig is pyroscope-go's sample_type_config: display names feed the
	// __name__ derivation.
	SampleTypeConfig map[string]SampleTypeConfig
}

// SampleTypeConfig is one entry of the sample_type_config form field.
type SampleTypeConfig struct {
	Units       string `json:"units,omitempty"`
	DisplayName string `json:"display-name,omitempty"`
	Aggregation string `json:"aggregation,omitempty"`
	Cumulative  bool   `json:"cumulative,omitempty"`
	Sampled     bool   `json:"sampled,omitempty"`
}

// defaultDisplayNames mirrors Pyroscope's default sample type mapping, which only
// matters for deriving __name__.
var defaultDisplayNames = map[string]string{
	"samples":     "cpu",
	"goroutine":   "goroutines",
	"contentions": "mutex_count",
	"delay":       "mutex_duration",
}

// Sample labels that identify a span rather than a series.
const (
	labelSpanID    = "span_id"
	labelProfileID = "profile_id" // Java and .NET call the span ID this
	labelTraceID   = "trace_id"
)

// gzipReaders reuses decompressors: their window buffers are most of the cost of a
// small profile.
var gzipReaders sync.Pool

// Decompress gunzips data when it starts with the gzip magic bytes.
func Decompress(data []byte) ([]byte, error) {
	if len(data) < 2 || data[0] != 0x1f || data[1] != 0x8b {
		return data, nil
	}
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(data))
	} else {
		err = zr.Reset(bytes.NewReader(data))
	}
	if err != nil {
		return nil, fmt.Errorf("gunzip profile: %w", err)
	}
	defer gzipReaders.Put(zr)
	// Profiles compress about 4:1; starting there saves most regrowth copies.
	buf := bytes.NewBuffer(make([]byte, 0, min(4*len(data), MaxDecompressedBytes)))
	_, err = io.Copy(buf, io.LimitReader(zr, MaxDecompressedBytes+1))
	out := buf.Bytes()
	if err != nil {
		return nil, fmt.Errorf("gunzip profile: %w", err)
	}
	if len(out) > MaxDecompressedBytes {
		return nil, fmt.Errorf("%w: over %d bytes decompressed", ErrTooLarge, MaxDecompressedBytes)
	}
	return out, nil
}

// ParsePprof decodes a (possibly gzipped) pprof.
func ParsePprof(data []byte) (*googlev1.Profile, error) {
	raw, err := Decompress(data)
	if err != nil {
		return nil, err
	}
	p := &googlev1.Profile{}
	if err := p.UnmarshalVT(raw); err != nil {
		return nil, fmt.Errorf("decode pprof: %w", err)
	}
	if err := checkPprof(p); err != nil {
		return nil, fmt.Errorf("invalid pprof: %w", err)
	}
	return p, nil
}

// checkPprof verifies every string index and sample shape so conversion can index
// without further checks.
func checkPprof(p *googlev1.Profile) error {
	n := int64(len(p.StringTable))
	str := func(i int64) bool { return i >= 0 && i < n }
	if len(p.SampleType) == 0 {
		return errors.New("no sample types")
	}
	for _, st := range p.SampleType {
		if st == nil || !str(st.Type) || !str(st.Unit) {
			return errors.New("sample type string index out of range")
		}
	}
	if p.PeriodType != nil && (!str(p.PeriodType.Type) || !str(p.PeriodType.Unit)) {
		return errors.New("period type string index out of range")
	}
	for _, f := range p.Function {
		if f == nil || !str(f.Name) || !str(f.SystemName) || !str(f.Filename) {
			return errors.New("function string index out of range")
		}
	}
	for _, m := range p.Mapping {
		if m == nil || !str(m.Filename) || !str(m.BuildId) {
			return errors.New("mapping string index out of range")
		}
	}
	for _, s := range p.Sample {
		if s == nil || len(s.Value) != len(p.SampleType) {
			return errors.New("sample value count differs from sample type count")
		}
		for _, l := range s.Label {
			if l == nil || !str(l.Key) || !str(l.Str) || !str(l.NumUnit) {
				return errors.New("label string index out of range")
			}
		}
	}
	for _, l := range p.Location {
		if l == nil {
			return errors.New("nil location")
		}
	}
	return nil
}

// FromPprof converts a decoded pprof into one profile per sample type and distinct
// set of sample labels.
func FromPprof(p *googlev1.Profile, in Input) (*profile.Batch, error) {
	c := newConverter(p)
	name := in.Name
	if name == "" {
		name = metricName(p, in.SampleTypeConfig)
	}
	t := p.TimeNanos
	if t <= 0 || time.Unix(0, t).Year() == 1970 {
		t = in.StartNanos
	}
	if t == 0 {
		t = time.Now().UnixNano()
	}
	base := labels.NewBuilder(labels.FromMap(in.Labels))
	base.Set(profile.LabelMetricName, name)
	if in.SpyName != "" && in.Labels["pyroscope_spy"] == "" {
		base.Set("pyroscope_spy", in.SpyName)
	}
	var periodType, periodUnit string
	if p.PeriodType != nil {
		periodType, periodUnit = p.StringTable[p.PeriodType.Type], p.StringTable[p.PeriodType.Unit]
	}
	typeIDs := make([]string, len(p.SampleType))
	for i, st := range p.SampleType {
		typeIDs[i] = profile.ProfileType{Name: name, SampleType: p.StringTable[st.Type], SampleUnit: p.StringTable[st.Unit],
			PeriodType: periodType, PeriodUnit: periodUnit}.ID()
	}

	// groups[labelKey] holds, per sample type, the index of its profile in the batch.
	groups := map[string][]int{}
	var totals []int64 // by profile in the batch
	for si, s := range p.Sample {
		stack, err := c.stack(s.LocationId)
		if err != nil {
			return nil, err
		}
		key, extra, span, trace := c.sampleLabels(s)
		idx, ok := groups[key]
		if !ok {
			idx = make([]int, len(p.SampleType))
			lb := labels.NewBuilder(base.Labels())
			for _, l := range extra {
				lb.Set(l.Name, l.Value)
			}
			for i := range p.SampleType {
				lb.Set(profile.LabelProfileType, typeIDs[i])
				idx[i] = len(c.batch.Profiles)
				c.batch.Profiles = append(c.batch.Profiles, profile.Profile{Labels: lb.Labels(), TimeNanos: t})
				totals = append(totals, 0)
			}
			groups[key] = idx
		}
		for i, v := range s.Value {
			if v == 0 {
				continue
			}
			// A total past int64 would wrap and show as a negative flame
			// graph: the profile is refused rather than stored wrong.
			tot, ok := addChecked(totals[idx[i]], v)
			if !ok {
				return nil, fmt.Errorf("sample %d: value %d of sample type %q overflows the profile's total", si, v, p.StringTable[p.SampleType[i].Type])
			}
			totals[idx[i]] = tot
			pr := &c.batch.Profiles[idx[i]]
			pr.Samples = append(pr.Samples, profile.Sample{Stack: stack, Value: v, SpanID: span, TraceID: trace})
		}
	}
	if lbls := labels.FromMap(in.Labels); lbls.Get(profile.LabelServiceName) == "" {
		return nil, fmt.Errorf("missing %s label", profile.LabelServiceName)
	}
	return &c.batch, nil
}

// metricName derives __name__ from sample types as Pyroscope's /ingest does.
func metricName(p *googlev1.Profile, cfg map[string]SampleTypeConfig) string {
	for _, st := range p.SampleType {
		if p.StringTable[st.Type] == "wall" {
			return "wall"
		}
	}
	var st string
	for _, t := range p.SampleType {
		st = p.StringTable[t.Type]
		if c, ok := cfg[st]; ok && c.DisplayName != "" {
			st = c.DisplayName
		} else if cfg == nil && defaultDisplayNames[st] != "" {
			st = defaultDisplayNames[st]
		}
		switch {
		case strings.Contains(st, "cpu"):
			return "process_cpu"
		case strings.Contains(st, "alloc_"), strings.Contains(st, "inuse_"), st == "space", st == "objects":
			return "memory"
		case strings.Contains(st, "mutex_"):
			return "mutex"
		case strings.Contains(st, "block_"):
			return "block"
		case strings.Contains(st, "goroutines"):
			return "goroutines"
		}
	}
	return st
}

// converter builds a batch's name and stack tables from one pprof, caching each
// location's frames and de-duplicating identical stacks.
type converter struct {
	p        *googlev1.Profile
	batch    profile.Batch
	names    map[string]uint32
	funcs    map[uint64]*googlev1.Function
	locs     map[uint64]*googlev1.Location
	locCache map[uint64][]uint32 // location ID -> root-first names
	stacks   map[string]uint32
	key      []byte
	frames   []uint32
}

func newConverter(p *googlev1.Profile) *converter {
	c := &converter{
		p:        p,
		names:    map[string]uint32{},
		funcs:    make(map[uint64]*googlev1.Function, len(p.Function)),
		locs:     make(map[uint64]*googlev1.Location, len(p.Location)),
		locCache: make(map[uint64][]uint32, len(p.Location)),
		stacks:   map[string]uint32{},
	}
	for _, f := range p.Function {
		c.funcs[f.Id] = f
	}
	for _, l := range p.Location {
		c.locs[l.Id] = l
	}
	return c
}

func (c *converter) name(s string) uint32 {
	if id, ok := c.names[s]; ok {
		return id
	}
	id := uint32(len(c.batch.Names))
	c.batch.Names = append(c.batch.Names, s)
	c.names[s] = id
	return id
}

// frames returns the root-first function names of one location: the last line is
// the outermost caller, earlier lines were inlined into it.
func (c *converter) location(id uint64) ([]uint32, error) {
	if f, ok := c.locCache[id]; ok {
		return f, nil
	}
	loc, ok := c.locs[id]
	if !ok {
		return nil, fmt.Errorf("invalid pprof: sample refers to unknown location %d", id)
	}
	var out []uint32
	for i := len(loc.Line) - 1; i >= 0; i-- {
		fn, ok := c.funcs[loc.Line[i].FunctionId]
		if !ok {
			return nil, fmt.Errorf("invalid pprof: location %d refers to unknown function %d", id, loc.Line[i].FunctionId)
		}
		name := c.p.StringTable[fn.Name]
		if name == "" {
			name = c.p.StringTable[fn.SystemName]
		}
		out = append(out, c.name(name))
	}
	if len(out) == 0 {
		// Unsymbolized: show the address, as pprof does.
		out = append(out, c.name("0x"+strconv.FormatUint(loc.Address, 16)))
	}
	c.locCache[id] = out
	return out, nil
}

func (c *converter) stack(locIDs []uint64) (uint32, error) {
	c.frames = c.frames[:0]
	for i := len(locIDs) - 1; i >= 0; i-- {
		f, err := c.location(locIDs[i])
		if err != nil {
			return 0, err
		}
		c.frames = append(c.frames, f...)
	}
	c.key = c.key[:0]
	for _, f := range c.frames {
		c.key = binary.AppendUvarint(c.key, uint64(f))
	}
	if id, ok := c.stacks[string(c.key)]; ok {
		return id, nil
	}
	id := uint32(len(c.batch.Stacks))
	c.batch.Stacks = append(c.batch.Stacks, append([]uint32(nil), c.frames...))
	c.stacks[string(c.key)] = id
	return id, nil
}

// sampleLabels splits a sample's string labels into span identity and series
// labels; key identifies the series labels.
func (c *converter) sampleLabels(s *googlev1.Sample) (key string, extra []labels.Label, span uint64, trace string) {
	var sb strings.Builder
	for _, l := range s.Label {
		if l.Str == 0 {
			continue // numeric labels do not select series
		}
		k, v := c.p.StringTable[l.Key], c.p.StringTable[l.Str]
		switch k {
		case labelSpanID, labelProfileID:
			if id, err := strconv.ParseUint(v, 16, 64); err == nil {
				span = id
			}
			continue
		case labelTraceID:
			trace = strings.ToLower(v)
			continue
		}
		if !model.UTF8Validation.IsValidLabelName(k) || strings.HasPrefix(k, "__") {
			continue
		}
		extra = append(extra, labels.Label{Name: k, Value: v})
		sb.WriteString(k)
		sb.WriteByte(0)
		sb.WriteString(v)
		sb.WriteByte(0)
	}
	return sb.String(), extra, span, trace
}

// addChecked adds a and b, reporting false when the sum leaves int64.
func addChecked(a, b int64) (int64, bool) {
	s := a + b
	if (b > 0 && s < a) || (b < 0 && s > a) {
		return 0, false
	}
	return s, true
}
