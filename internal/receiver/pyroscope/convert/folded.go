package convert

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline/profile"
)

// foldedType is what an app-name suffix (`myapp.cpu`) means for folded input, after
// Pyroscope's mapping of the old storage names.
type foldedType struct {
	name, sampleType, unit string
	sampled                bool // values are sample counts, scaled by the period
}

var foldedTypes = map[string]foldedType{
	"cpu":                        {"process_cpu", "cpu", "nanoseconds", true},
	"itimer":                     {"process_cpu", "cpu", "nanoseconds", true},
	"wall":                       {"wall", "wall", "nanoseconds", true},
	"inuse_objects":              {"memory", "inuse_objects", "count", false},
	"inuse_space":                {"memory", "inuse_space", "bytes", false},
	"alloc_objects":              {"memory", "alloc_objects", "count", false},
	"alloc_space":                {"memory", "alloc_space", "bytes", false},
	"goroutines":                 {"goroutine", "goroutines", "count", false},
	"mutex_count":                {"mutex", "contentions", "count", false},
	"mutex_duration":             {"mutex", "delay", "nanoseconds", false},
	"block_count":                {"block", "contentions", "count", false},
	"block_duration":             {"block", "delay", "nanoseconds", false},
	"lock_count":                 {"block", "contentions", "count", false},
	"lock_duration":              {"block", "delay", "nanoseconds", false},
	"alloc_in_new_tlab_objects":  {"memory", "alloc_in_new_tlab_objects", "count", false},
	"alloc_in_new_tlab_bytes":    {"memory", "alloc_in_new_tlab_bytes", "bytes", false},
	"alloc_outside_tlab_objects": {"memory", "alloc_outside_tlab_objects", "count", false},
	"alloc_outside_tlab_bytes":   {"memory", "alloc_outside_tlab_bytes", "bytes", false},
	"live":                       {"memory", "live", "count", false},
	"exceptions":                 {"exceptions", "samples", "count", false},
}

// FoldedInput describes a folded (collapsed stacks) upload.
type FoldedInput struct {
	AppName    string            // from name=, may end in .cpu, .inuse_space, ...
	Labels     map[string]string // the {k=v} part of name=
	SpyName    string
	SampleRate uint32
	StartNanos int64
	// Lines selects the `lines` format: one stack per line, each counting 1.
	Lines bool
}

// FromFolded parses `a;b;c 42` lines (or bare stacks with Lines) into a batch.
func FromFolded(data []byte, in FoldedInput) (*profile.Batch, error) {
	app, ft := splitAppType(in.AppName)
	if app == "" {
		return nil, fmt.Errorf("name: missing application name")
	}
	scale := int64(1)
	periodType, periodUnit := "", ""
	if ft.sampled {
		rate := in.SampleRate
		if rate == 0 {
			rate = 100
		}
		// Pyroscope divides a second by the rate: above 1e9 Hz that period
		// is 0 and every sample would be stored as zero. One nanosecond is
		// the finest period there is, so the samples keep their counts.
		scale = max(1, 1_000_000_000/int64(rate))
		periodType, periodUnit = "cpu", "nanoseconds"
	}
	lb := labels.NewBuilder(labels.FromMap(in.Labels))
	if lb.Get(profile.LabelServiceName) == "" {
		lb.Set(profile.LabelServiceName, app)
	}
	lb.Set(profile.LabelMetricName, ft.name)
	if in.SpyName != "" {
		lb.Set("pyroscope_spy", in.SpyName)
	}
	lb.Set(profile.LabelProfileType, profile.ProfileType{Name: ft.name, SampleType: ft.sampleType, SampleUnit: ft.unit,
		PeriodType: periodType, PeriodUnit: periodUnit}.ID())

	b := &profile.Batch{}
	p := profile.Profile{Labels: lb.Labels(), TimeNanos: in.StartNanos}
	names := map[string]uint32{}
	stacks := map[string]uint32{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	lineNo := 0
	var total int64
	for sc.Scan() {
		lineNo++
		line := strings.TrimSpace(sc.Text())
		if line == "" {
			continue
		}
		stack, value := line, int64(1)
		if !in.Lines {
			i := strings.LastIndexByte(line, ' ')
			if i < 0 {
				return nil, fmt.Errorf("line %d: want `frame;frame value`", lineNo)
			}
			v, err := strconv.ParseInt(line[i+1:], 10, 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("line %d: bad value %q", lineNo, line[i+1:])
			}
			stack, value = strings.TrimSpace(line[:i]), v
		}
		if value == 0 || stack == "" {
			continue
		}
		// A value or a total past int64 would wrap and show as a negative flame
		// graph, so the profile is refused rather than stored wrong.
		if (scale > 0 && value > math.MaxInt64/scale) || total > math.MaxInt64-value*scale {
			return nil, fmt.Errorf("line %d: value %d overflows the profile's total", lineNo, value)
		}
		total += value * scale
		id, ok := stacks[stack]
		if !ok {
			var frames []uint32
			for _, f := range strings.Split(stack, ";") {
				n, ok := names[f]
				if !ok {
					n = uint32(len(b.Names))
					b.Names = append(b.Names, f)
					names[f] = n
				}
				frames = append(frames, n)
			}
			id = uint32(len(b.Stacks))
			b.Stacks = append(b.Stacks, frames)
			stacks[stack] = id
		}
		p.Samples = append(p.Samples, profile.Sample{Stack: id, Value: value * scale})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read folded profile: %w", err)
	}
	if len(p.Samples) > 0 {
		b.Profiles = append(b.Profiles, p)
	}
	return b, nil
}

// splitAppType strips a known profile-type suffix from an app name; without one
// the data is CPU samples, as in Pyroscope.
func splitAppType(app string) (string, foldedType) {
	if i := strings.LastIndexByte(app, '.'); i >= 0 {
		if ft, ok := foldedTypes[app[i+1:]]; ok {
			return app[:i], ft
		}
	}
	return app, foldedTypes["cpu"]
}
