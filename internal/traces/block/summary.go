package block

import (
	"strconv"
	"strings"

	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// Caps keep meta.json small however wild the data is.
const (
	maxServices     = 1000
	maxSpanNames    = 1000
	maxTagKeys      = 500
	maxValuesPerKey = 100
)

// Summarizer accumulates a Summary over spans.
type Summarizer struct {
	s           Summary
	services    map[string]bool
	names       map[string]bool
	seenRes     map[string]bool
	recentRes   recentBlobs
	lastService string // of the last span added, if any was
	anySpan     bool
	values      map[string]bool // scope, key, 0, value
	text        []byte
	vkey        []byte
}

func NewSummarizer() *Summarizer {
	return &Summarizer{
		s: Summary{ServicesComplete: true, NamesComplete: true, SpanTagsComplete: true, ResTagsComplete: true,
			SpanTags: map[string]*TagValues{}, ResourceTags: map[string]*TagValues{}},
		services: map[string]bool{}, names: map[string]bool{}, seenRes: map[string]bool{},
		values: map[string]bool{},
	}
}

func addCapped(set map[string]bool, list *[]string, complete *bool, v string, limit int) {
	if set[v] {
		return
	}
	if len(set) >= limit {
		*complete = false
		return
	}
	v = strings.Clone(v) // v may alias a reader's reused buffer
	set[v] = true
	*list = append(*list, v)
}

// AddTraceDuration records the length of a trace whose spans were added by AddSpan.
func (z *Summarizer) AddTraceDuration(d int64) {
	z.s.MaxTraceDuration = max(z.s.MaxTraceDuration, d)
}

// AddSpan adds one span. Its bytes must stay unchanged while z is in use: the
// last spans' resources are kept for comparison, not copied.
func (z *Summarizer) AddSpan(sp *spanrow.Span) {
	z.addFields(sp, true)
	err := spanrow.EachScalar(sp.Attrs, z.addSpanScalar)
	if err != nil {
		z.s.SpanTagsComplete = false
	}
}

// addFields adds all of a span but its attributes; its name only if name is set
// (a caller that knows the name was added before skips the lookup).
func (z *Summarizer) addFields(sp *spanrow.Span, name bool) {
	// Neighbouring spans mostly share a service, and one of a few resources:
	// comparing with those (equal pointers compare at once) spares the map
	// lookups, which hash the whole resource blob.
	if !z.anySpan || sp.Service != z.lastService {
		addCapped(z.services, &z.s.Services, &z.s.ServicesComplete, sp.Service, maxServices)
	}
	z.lastService, z.anySpan = sp.Service, true
	if name {
		addCapped(z.names, &z.s.SpanNames, &z.s.NamesComplete, sp.Name, maxSpanNames)
	}
	z.s.MaxSpanDuration = max(z.s.MaxSpanDuration, sp.Duration)
	if sp.StatusCode == 2 {
		z.s.HasErrors = true
	}
	if z.recentRes.seen(sp.Resource) {
		return
	}
	if !z.seenRes[string(sp.Resource)] {
		z.seenRes[string(sp.Resource)] = true // string(bytes) copies
		attrs, ok := spanrow.ResourceAttrs(sp.Resource)
		if ok {
			ok = spanrow.EachScalar(attrs, func(key []byte, v spanrow.Scalar) {
				z.addScalar(z.s.ResourceTags, &z.s.ResTagsComplete, ScopeResource, key, v)
			}) == nil
		}
		if !ok {
			z.s.ResTagsComplete = false
		}
	}
}

// addSpanScalar adds one span attribute. Adding a value again changes nothing.
func (z *Summarizer) addSpanScalar(key []byte, v spanrow.Scalar) {
	z.addScalar(z.s.SpanTags, &z.s.SpanTagsComplete, ScopeSpan, key, v)
}

func (z *Summarizer) addScalar(tags map[string]*TagValues, complete *bool, scope byte, key []byte, v spanrow.Scalar) {
	tv := tags[string(key)]
	if tv == nil {
		if len(tags) >= maxTagKeys {
			*complete = false
			return
		}
		tv = &TagValues{Complete: true}
		tags[string(key)] = tv
	}
	if !tv.Complete {
		return
	}
	typ, text := scalarText(z.text[:0], v)
	z.text = text
	if typ == "" { // not a scalar: the value list can no longer rule anything out
		tv.Complete = false
		return
	}
	// One set for all keys, keyed by scope, key and value, built in a reused
	// buffer so that a value already seen costs no allocation.
	z.vkey = append(append(append(append(z.vkey[:0], scope), key...), 0), text...)
	if z.values[string(z.vkey)] {
		return
	}
	if len(tv.Values) >= maxValuesPerKey {
		tv.Complete = false
		return
	}
	z.values[string(z.vkey)] = true
	tv.Values = append(tv.Values, TagValue{Type: typ, Value: string(text)})
}

// scalarText renders a scalar as its TraceQL type and canonical text, appending
// to buf; the type is "" for non-scalars.
func scalarText(buf []byte, v spanrow.Scalar) (string, []byte) {
	switch v.Kind {
	case spanrow.KindString:
		return "string", append(buf, v.Str...)
	case spanrow.KindInt:
		return "int", strconv.AppendInt(buf, v.Int, 10)
	case spanrow.KindFloat:
		return "float", strconv.AppendFloat(buf, v.Float, 'g', -1, 64)
	case spanrow.KindBool:
		return "bool", strconv.AppendBool(buf, v.Bool)
	}
	return "", buf
}

// Summary returns what was accumulated.
func (z *Summarizer) Summary() Summary { return z.s }
