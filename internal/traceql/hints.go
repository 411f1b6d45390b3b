package traceql

import (
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"
)

// Hints are necessary conditions for a trace to match a query, for pushing
// filters down into the store. Every field states something that is true of
// every trace the query can match (for metrics queries: of every trace that
// contributes a span); a zero field means "no constraint". They never say a
// trace matches: the store still runs EvalTrace on what is left. When the
// query is too complex to reason about (negation, arithmetic, ...) the
// affected fields are simply left unconstrained, so skipping on Hints is
// always safe.
//
// Typical use: build a TraceSummary per block (or per trace) and skip it when
// !q.Hints().MayMatch(summary).
//
// Hints are about whole traces: different hints may be satisfied by different
// spans of a trace. A summary must therefore cover every span of each trace
// it describes. If a trace can be split across blocks (spans arriving after a
// block cut), a block holding only part of a trace may fail MayMatch although
// the whole trace matches: either summarize such blocks together with the
// other parts of their traces, or do not skip blocks that hold partial traces.
type Hints struct {
	// ServiceNames: the trace has a span whose resource attribute service.name
	// is one of these. From resource.service.name = "x", =~ "x|y",
	// rootServiceName = "x". Nil means unconstrained.
	ServiceNames []string
	// SpanNames: the trace has a span whose name is one of these. From
	// name = "x" and name =~ "x|y". Nil means unconstrained.
	SpanNames []string
	// MinSpanDuration: the trace has a span lasting at least this long. From
	// duration > d, duration >= d, duration = d. Zero means unconstrained.
	MinSpanDuration time.Duration
	// MinTraceDuration: the trace (latest span end minus earliest span start)
	// lasts at least this long. From traceDuration > d. Zero means unconstrained.
	MinTraceDuration time.Duration
	// RequireError: the trace has a span with status error.
	RequireError bool
	// AttrKeys: for each entry, the trace has that attribute (any value).
	AttrKeys []ScopedKey
	// AttrValues: for each entry, the trace has that attribute with that
	// string value (compared exactly, case sensitive), either as the whole
	// value or as one element of an array value.
	AttrValues []KeyValue
	// AttrCmps: for each entry, the trace has that attribute with a scalar value
	// for which the comparison holds. From attr <op> literal with any comparison
	// or =~. A store that indexes attribute values tests them with Holds.
	AttrCmps []AttrCmp
}

// AttrCmp is one attribute comparison: attribute Op literal.
type AttrCmp struct {
	ScopedKey
	Op  string
	lit value
	re  *regexp.Regexp // for =~
}

// Holds reports whether a stored scalar value satisfies the comparison, by
// TraceQL's rules (ints and floats compare as numbers; other mismatched types
// never match). typ is "string", "int", "float" or "bool", text its canonical
// text form; a value it cannot read is assumed to match.
func (c AttrCmp) Holds(typ, text string) bool {
	v, ok := parseScalar(typ, text)
	if !ok {
		return true
	}
	return c.holds(v)
}

// HoldsString, HoldsInt, HoldsFloat and HoldsBool test a typed value.
func (c AttrCmp) HoldsString(s string) bool { return c.holds(strValue(s)) }
func (c AttrCmp) HoldsInt(n int64) bool     { return c.holds(intValue(n)) }
func (c AttrCmp) HoldsFloat(f float64) bool { return c.holds(floatValue(f)) }
func (c AttrCmp) HoldsBool(b bool) bool     { return c.holds(boolValue(b)) }

func (c AttrCmp) holds(v value) bool {
	if c.Op == "=~" {
		return v.t == vStr && c.re.MatchString(v.s)
	}
	return compare(cmpOps[c.Op], v, c.lit)
}

func parseScalar(typ, text string) (value, bool) {
	switch typ {
	case "string":
		return strValue(text), true
	case "int":
		n, err := strconv.ParseInt(text, 10, 64)
		return intValue(n), err == nil
	case "float":
		f, err := strconv.ParseFloat(text, 64)
		return floatValue(f), err == nil
	case "bool":
		b, err := strconv.ParseBool(text)
		return boolValue(b), err == nil
	}
	return value{}, false
}

// attrCmp builds the comparison hint for attr op lit, if the store can test it.
func attrCmp(key ScopedKey, op string, lit value) (AttrCmp, bool) {
	switch lit.t {
	case vInt, vFloat, vStr, vBool:
	default:
		return AttrCmp{}, false
	}
	if op == "=~" {
		if lit.t != vStr {
			return AttrCmp{}, false
		}
		re, err := regexp.Compile("^(?:" + lit.s + ")$")
		if err != nil {
			return AttrCmp{}, false
		}
		return AttrCmp{ScopedKey: key, Op: op, lit: lit, re: re}, true
	}
	if _, ok := cmpOps[op]; !ok {
		return AttrCmp{}, false
	}
	return AttrCmp{ScopedKey: key, Op: op, lit: lit}, true
}

// ScopedKey names an attribute. Scope is "span", "resource", "event", "link",
// "instrumentation", or "" for an unscoped .attr (span or resource).
type ScopedKey struct {
	Scope string
	Key   string
}

// KeyValue is an attribute with a string value.
type KeyValue struct {
	ScopedKey
	Value string
}

// TraceSummary describes what a block, a row group or a single trace contains,
// for Hints.MayMatch. Every field is optional and its zero value means
// "unknown", which never causes a skip; a store fills in what it tracks.
type TraceSummary struct {
	// ServiceNames holds every resource service.name present; nil if unknown.
	ServiceNames map[string]struct{}
	// SpanNames holds every span name present; nil if unknown.
	SpanNames map[string]struct{}
	// MaxSpanDuration is the longest span present; 0 if unknown.
	MaxSpanDuration time.Duration
	// MaxTraceDuration is the longest trace present; 0 if unknown.
	MaxTraceDuration time.Duration
	// NoErrors is true when it is known that no span has status error.
	NoErrors bool
	// SpanAttrKeys and ResourceAttrKeys hold every attribute key present at
	// that level; nil if unknown.
	SpanAttrKeys, ResourceAttrKeys map[string]struct{}
	// HasAttrValue, if set, reports whether the attribute may be present with
	// this string value. It must return true unless the pair is surely absent
	// (a bloom filter fits).
	HasAttrValue func(k ScopedKey, value string) bool
}

// MayMatch reports whether data described by s may contain a match. It
// returns false only when some hint is certainly violated.
func (h Hints) MayMatch(s TraceSummary) bool {
	if !anyIn(h.ServiceNames, s.ServiceNames) || !anyIn(h.SpanNames, s.SpanNames) {
		return false
	}
	if h.MinSpanDuration > 0 && s.MaxSpanDuration > 0 && s.MaxSpanDuration < h.MinSpanDuration {
		return false
	}
	if h.MinTraceDuration > 0 && s.MaxTraceDuration > 0 && s.MaxTraceDuration < h.MinTraceDuration {
		return false
	}
	if h.RequireError && s.NoErrors {
		return false
	}
	for _, k := range h.AttrKeys {
		if !s.mayHaveKey(k) {
			return false
		}
	}
	for _, kv := range h.AttrValues {
		if !s.mayHaveKey(kv.ScopedKey) {
			return false
		}
		if s.HasAttrValue != nil && !s.HasAttrValue(kv.ScopedKey, kv.Value) {
			return false
		}
	}
	return true
}

// Unconstrained reports whether the hints cannot rule anything out.
func (h Hints) Unconstrained() bool {
	return h.ServiceNames == nil && h.SpanNames == nil && h.MinSpanDuration == 0 &&
		h.MinTraceDuration == 0 && !h.RequireError && len(h.AttrKeys) == 0 && len(h.AttrValues) == 0 &&
		len(h.AttrCmps) == 0
}

func anyIn(want []string, have map[string]struct{}) bool {
	if want == nil || have == nil {
		return true
	}
	for _, w := range want {
		if _, ok := have[w]; ok {
			return true
		}
	}
	return false
}

func (s TraceSummary) mayHaveKey(k ScopedKey) bool {
	has := func(m map[string]struct{}) bool {
		if m == nil {
			return true
		}
		_, ok := m[k.Key]
		return ok
	}
	switch k.Scope {
	case "span":
		return has(s.SpanAttrKeys)
	case "resource":
		return has(s.ResourceAttrKeys)
	case "":
		return has(s.SpanAttrKeys) || has(s.ResourceAttrKeys)
	}
	return true
}

// andHints combines two conditions that must both hold. Each side is
// necessary on its own, so keeping either is sound; sets keep the smaller.
func andHints(a, b Hints) Hints {
	out := Hints{
		ServiceNames:     smaller(a.ServiceNames, b.ServiceNames),
		SpanNames:        smaller(a.SpanNames, b.SpanNames),
		MinSpanDuration:  max(a.MinSpanDuration, b.MinSpanDuration),
		MinTraceDuration: max(a.MinTraceDuration, b.MinTraceDuration),
		RequireError:     a.RequireError || b.RequireError,
		AttrKeys:         append(slices.Clip(a.AttrKeys), b.AttrKeys...),
		AttrValues:       append(slices.Clip(a.AttrValues), b.AttrValues...),
		AttrCmps:         append(slices.Clip(a.AttrCmps), b.AttrCmps...),
	}
	return out
}

func smaller(a, b []string) []string {
	switch {
	case a == nil:
		return b
	case b == nil:
		return a
	case len(b) < len(a):
		return b
	}
	return a
}

// orHints keeps only what holds on either side.
func orHints(a, b Hints) Hints {
	out := Hints{
		MinSpanDuration:  min(a.MinSpanDuration, b.MinSpanDuration),
		MinTraceDuration: min(a.MinTraceDuration, b.MinTraceDuration),
		RequireError:     a.RequireError && b.RequireError,
	}
	if a.ServiceNames != nil && b.ServiceNames != nil {
		out.ServiceNames = unionStrings(a.ServiceNames, b.ServiceNames)
	}
	if a.SpanNames != nil && b.SpanNames != nil {
		out.SpanNames = unionStrings(a.SpanNames, b.SpanNames)
	}
	for _, k := range a.AttrKeys {
		if slices.Contains(b.AttrKeys, k) {
			out.AttrKeys = append(out.AttrKeys, k)
		}
	}
	for _, kv := range a.AttrValues {
		if slices.Contains(b.AttrValues, kv) {
			out.AttrValues = append(out.AttrValues, kv)
		}
	}
	return out
}

func unionStrings(a, b []string) []string {
	out := slices.Clone(a)
	for _, s := range b {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

func pipelineHints(pl *Pipeline) Hints {
	var h Hints
	for _, st := range pl.Stages {
		h = andHints(h, stageHints(st))
	}
	return h
}

func stageHints(st Stage) Hints {
	switch st := st.(type) {
	case *Pipeline:
		return pipelineHints(st)
	case *SpansetFilter:
		if st.Expr == nil {
			return Hints{}
		}
		return fieldHints(st.Expr)
	case *SpansetOp:
		l, r := stageHints(st.L), stageHints(st.R)
		switch {
		case st.Op == "||":
			return orHints(l, r)
		case st.Op[0] == '!':
			return r // the left side may match nothing at all
		}
		return andHints(l, r)
	}
	return Hints{}
}

// fieldHints derives conditions from a spanset filter expression.
func fieldHints(e FieldExpr) Hints {
	b, ok := e.(*BinaryExpr)
	if !ok {
		return Hints{}
	}
	switch b.Op {
	case "&&":
		return andHints(fieldHints(b.L), fieldHints(b.R))
	case "||":
		return orHints(fieldHints(b.L), fieldHints(b.R))
	}
	ref, lit, op, ok := refAndLiteral(b)
	if !ok {
		return Hints{}
	}
	if lit.V.t == vNil {
		if a, isAttr := ref.(AttrRef); isAttr && op == "!=" {
			return Hints{AttrKeys: []ScopedKey{{Scope: a.Scope, Key: a.Name}}}
		}
		return Hints{}
	}
	switch r := ref.(type) {
	case IntrinsicRef:
		return intrinsicHints(r.Name, op, lit.V)
	case AttrRef:
		key := ScopedKey{Scope: r.Scope, Key: r.Name}
		h := Hints{AttrKeys: []ScopedKey{key}}
		if op == "=" && lit.V.t == vStr {
			h.AttrValues = []KeyValue{{ScopedKey: key, Value: lit.V.s}}
			h.AttrKeys = nil
		} else if c, ok := attrCmp(key, op, lit.V); ok {
			h.AttrCmps = []AttrCmp{c}
		}
		if r.Scope == "resource" && r.Name == "service.name" {
			h.ServiceNames = stringSetFor(op, lit.V)
		}
		return h
	}
	return Hints{}
}

// refAndLiteral splits "ref op literal" (or "literal op ref", flipping op).
func refAndLiteral(b *BinaryExpr) (FieldExpr, Literal, string, bool) {
	isRef := func(e FieldExpr) bool {
		switch e.(type) {
		case AttrRef, IntrinsicRef:
			return true
		}
		return false
	}
	if lit, ok := b.R.(Literal); ok && isRef(b.L) {
		return b.L, lit, b.Op, true
	}
	if lit, ok := b.L.(Literal); ok && isRef(b.R) {
		flipped := map[string]string{"<": ">", "<=": ">=", ">": "<", ">=": "<=", "=": "=", "!=": "!="}[b.Op]
		if flipped == "" {
			return nil, Literal{}, "", false
		}
		return b.R, lit, flipped, true
	}
	return nil, Literal{}, "", false
}

func intrinsicHints(name, op string, v value) Hints {
	switch name {
	case "name":
		return Hints{SpanNames: stringSetFor(op, v)}
	case "rootServiceName":
		return Hints{ServiceNames: stringSetFor(op, v)}
	case "status":
		if op == "=" && v.t == vStatus && v.n == 2 {
			return Hints{RequireError: true}
		}
	case "duration", "traceDuration":
		if (op == ">" || op == ">=" || op == "=") && (v.t == vDur || v.t == vInt) && v.n > 0 {
			if name == "duration" {
				return Hints{MinSpanDuration: time.Duration(v.n)}
			}
			return Hints{MinTraceDuration: time.Duration(v.n)}
		}
	}
	return Hints{}
}

// stringSetFor returns the exact strings a string comparison can match, or
// nil when it cannot tell: "=" gives one, "=~" a regex that is a literal or an
// alternation of literals gives each of them.
func stringSetFor(op string, v value) []string {
	if v.t != vStr {
		return nil
	}
	switch op {
	case "=":
		return []string{v.s}
	case "=~":
		return regexLiterals(v.s)
	}
	return nil
}

func regexLiterals(pattern string) []string {
	re, err := syntax.Parse(pattern, syntax.Perl)
	if err != nil {
		return nil
	}
	re = re.Simplify()
	lit := func(r *syntax.Regexp) (string, bool) {
		if r.Op == syntax.OpLiteral && r.Flags&syntax.FoldCase == 0 {
			return string(r.Rune), true
		}
		if r.Op == syntax.OpEmptyMatch {
			return "", true
		}
		return "", false
	}
	if s, ok := lit(re); ok {
		return []string{s}
	}
	if re.Op != syntax.OpAlternate {
		return nil
	}
	var out []string
	for _, sub := range re.Sub {
		s, ok := lit(sub)
		if !ok {
			return nil
		}
		out = append(out, s)
	}
	return out
}

// Summarize computes the exact summary of one trace (or of any batch of
// spans). A store can keep one per trace, or Merge them into one per block.
func Summarize(td ptrace.Traces) TraceSummary {
	s := TraceSummary{
		ServiceNames:     map[string]struct{}{},
		SpanNames:        map[string]struct{}{},
		SpanAttrKeys:     map[string]struct{}{},
		ResourceAttrKeys: map[string]struct{}{},
		NoErrors:         true,
	}
	var minStart, maxEnd uint64
	first := true
	rss := td.ResourceSpans()
	for i := 0; i < rss.Len(); i++ {
		rs := rss.At(i)
		rattrs := rs.Resource().Attributes()
		for k, v := range rattrs.All() {
			s.ResourceAttrKeys[k] = struct{}{}
			if k == "service.name" {
				s.ServiceNames[v.AsString()] = struct{}{}
			}
		}
		sss := rs.ScopeSpans()
		for j := 0; j < sss.Len(); j++ {
			spans := sss.At(j).Spans()
			for k := 0; k < spans.Len(); k++ {
				sp := spans.At(k)
				s.SpanNames[sp.Name()] = struct{}{}
				for key := range sp.Attributes().All() {
					s.SpanAttrKeys[key] = struct{}{}
				}
				if sp.Status().Code() == ptrace.StatusCodeError {
					s.NoErrors = false
				}
				start, end := uint64(sp.StartTimestamp()), uint64(sp.EndTimestamp())
				if end > start && time.Duration(end-start) > s.MaxSpanDuration {
					s.MaxSpanDuration = time.Duration(end - start)
				}
				if first || start < minStart {
					minStart = start
				}
				maxEnd = max(maxEnd, end)
				first = false
			}
		}
	}
	if !first && maxEnd > minStart {
		s.MaxTraceDuration = time.Duration(maxEnd - minStart)
	}
	return s
}

// Merge returns a summary covering the data of both s and o (for building a
// block summary from trace summaries). Anything unknown on either side is
// unknown in the result; HasAttrValue is dropped.
func (s TraceSummary) Merge(o TraceSummary) TraceSummary {
	unknownDur := func(a, b time.Duration) time.Duration {
		if a == 0 || b == 0 {
			return 0
		}
		return max(a, b)
	}
	return TraceSummary{
		ServiceNames:     unionSet(s.ServiceNames, o.ServiceNames),
		SpanNames:        unionSet(s.SpanNames, o.SpanNames),
		MaxSpanDuration:  unknownDur(s.MaxSpanDuration, o.MaxSpanDuration),
		MaxTraceDuration: unknownDur(s.MaxTraceDuration, o.MaxTraceDuration),
		NoErrors:         s.NoErrors && o.NoErrors,
		SpanAttrKeys:     unionSet(s.SpanAttrKeys, o.SpanAttrKeys),
		ResourceAttrKeys: unionSet(s.ResourceAttrKeys, o.ResourceAttrKeys),
	}
}

func unionSet(a, b map[string]struct{}) map[string]struct{} {
	if a == nil || b == nil {
		return nil
	}
	out := make(map[string]struct{}, len(a)+len(b))
	for k := range a {
		out[k] = struct{}{}
	}
	for k := range b {
		out[k] = struct{}{}
	}
	return out
}
