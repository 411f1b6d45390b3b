package block

import (
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

// The tags object is an inverted index of a block: for every attribute key, span
// name and status, each distinct scalar value with the ordinals (index positions)
// of the traces that hold it. A search intersects these lists to find the few traces
// worth reading instead of decoding every span, the way a Prometheus index finds
// series by label.
//
//	tags  = zstd( "VTG1" uvarint(keys) { scope key-string complete-byte uvarint(values) { value } } )
//	value = type-string text-string uvarint(traces) uvarint(len) delta-uvarint-ordinals
//
// A key with too many distinct values, a too-long value or a non-scalar value is kept
// only as "incomplete": its values are dropped and searches on it read the spans.

// Tag scopes.
const (
	ScopeSpan     byte = 's'
	ScopeResource byte = 'r'
	ScopeName     byte = 'n' // span name, key ""
	ScopeStatus   byte = 'x' // span status ("unset", "ok", "error"), key ""
)

// Caps keep the index small and its build cheap whatever the data; what they cut
// is searched by reading spans instead.
const (
	maxIndexedKeys   = 2000
	maxIndexedValues = 10000
	maxIndexedValue  = 256
)

const tagsMagic = "VTG1"

type tagKey struct {
	scope byte
	key   string
}

// Value kinds, as add takes them and kindOrder orders them.
const (
	kindString byte = 's'
	kindInt    byte = 'i'
	kindFloat  byte = 'f'
	kindBool   byte = 'b'
)

var kindNames = map[byte]string{kindString: "string", kindInt: "int", kindFloat: "float", kindBool: "bool"}

// kindOrder lists the value kinds in byte order, the order values are
// encoded in (by kind, then text); keyBuild keeps one map per kind in it.
var kindOrder = [...]byte{kindBool, kindFloat, kindInt, kindString}

// kindSlot is kind's index in kindOrder.
func kindSlot(kind byte) int {
	switch kind {
	case kindBool:
		return 0
	case kindFloat:
		return 1
	case kindInt:
		return 2
	default: // kindString: add takes no other kind
		return 3
	}
}

type keyBuild struct {
	complete bool
	n        int // distinct values, all kinds
	// text -> trace ordinals, one map per kind (kindSlot), by pointer so
	// that adding an ordinal costs one map lookup, not a lookup and a store.
	// Keyed by the text alone, a lookup reads the span's bytes where they
	// are: a key of kind byte and text had to be copied together first.
	values [len(kindOrder)]map[string]*[]uint32
}

// tagIndexer accumulates postings while a block is written. It runs for every span
// of every block, so lookups go through maps keyed by plain strings built in a
// reused buffer, which Go looks up without allocating.
type tagIndexer struct {
	keys         [256]map[string]*keyBuild // by scope byte
	nkeys        int
	keysComplete bool
	traceRes     recentBlobs // resources of the trace being added
}

func newTagIndexer() *tagIndexer {
	x := &tagIndexer{keysComplete: true}
	for _, sc := range []byte{ScopeSpan, ScopeResource, ScopeName, ScopeStatus} {
		x.keys[sc] = map[string]*keyBuild{}
	}
	return x
}

var statusText = [...]string{"unset", "ok", "error"}

// StatusText is the tags value of a span status code.
func StatusText(code int32) string {
	if code >= 0 && int(code) < len(statusText) {
		return statusText[code]
	}
	return "unset"
}

// addTrace indexes the spans of trace ord and adds them to z. One pass over
// their attributes serves both, and z is handed only the values the index did
// not hold yet: z has seen all the others, and adding a value again changes
// nothing in a summary.
func (x *tagIndexer) addTrace(ord uint32, rows []spanrow.Span, z *Summarizer) {
	onSpan := func(key []byte, v spanrow.Scalar) {
		if !x.addScalar(ord, ScopeSpan, key, v) {
			z.addSpanScalar(key, v)
		}
	}
	onRes := func(key []byte, v spanrow.Scalar) { x.addScalar(ord, ScopeResource, key, v) }
	x.traceRes = recentBlobs{}
	for i := range rows {
		r := &rows[i]
		known := x.add(ord, ScopeName, nil, kindString, []byte(r.Name))
		z.addFields(r, !known)
		x.add(ord, ScopeStatus, nil, kindString, []byte(StatusText(r.StatusCode)))
		if spanrow.EachScalar(r.Attrs, onSpan) != nil {
			x.keysComplete = false
			z.s.SpanTagsComplete = false
		}
		if x.traceRes.seen(r.Resource) {
			continue // indexed for this trace already
		}
		attrs, ok := spanrow.ResourceAttrs(r.Resource)
		if !ok || spanrow.EachScalar(attrs, onRes) != nil {
			x.keysComplete = false
		}
	}
}

// addScalar is add for an attribute value; it reports whether the index held
// the value already.
func (x *tagIndexer) addScalar(ord uint32, scope byte, key []byte, v spanrow.Scalar) bool {
	var num [32]byte
	switch v.Kind {
	case spanrow.KindString:
		return x.add(ord, scope, key, kindString, v.Str)
	case spanrow.KindInt:
		return x.add(ord, scope, key, kindInt, strconv.AppendInt(num[:0], v.Int, 10))
	case spanrow.KindFloat:
		return x.add(ord, scope, key, kindFloat, strconv.AppendFloat(num[:0], v.Float, 'g', -1, 64))
	case spanrow.KindBool:
		return x.add(ord, scope, key, kindBool, strconv.AppendBool(num[:0], v.Bool))
	default:
		return x.add(ord, scope, key, 0, nil)
	}
}

// add records that trace ord holds the value. kind 0 marks a non-scalar value.
// Keys and values are copied only when first seen: they alias span data. It
// reports whether the key's values held this one already (false for a key the
// index gave up on).
func (x *tagIndexer) add(ord uint32, scope byte, key []byte, kind byte, text []byte) bool {
	keys := x.keys[scope]
	kb := keys[string(key)]
	if kb == nil {
		if x.nkeys >= maxIndexedKeys {
			x.keysComplete = false
			return false
		}
		kb = &keyBuild{complete: true}
		keys[string(key)] = kb
		x.nkeys++
	}
	if !kb.complete {
		return false
	}
	if kind == 0 || len(text) > maxIndexedValue {
		kb.drop()
		return false
	}
	values := kb.values[kindSlot(kind)]
	post, ok := values[string(text)]
	if !ok {
		if kb.n >= maxIndexedValues {
			kb.drop()
			return false
		}
		if values == nil {
			values = map[string]*[]uint32{}
			kb.values[kindSlot(kind)] = values
		}
		post = new([]uint32)
		values[string(text)] = post
		kb.n++
	}
	if n := len(*post); n == 0 || (*post)[n-1] != ord {
		*post = append(*post, ord)
	}
	return ok
}

// recentBlobs remembers the last few distinct blobs it was asked about, so
// that spans which interleave a few resources (a trace crossing services)
// have each scanned once rather than at every change. A blob shared by
// pointer, as a batch's spans share their resource, compares at once.
type recentBlobs struct {
	b       [8][]byte
	n, next int
}

// seen reports whether b is among the remembered blobs, remembering it if not.
func (r *recentBlobs) seen(b []byte) bool {
	for i := range r.n {
		if string(r.b[i]) == string(b) {
			return true
		}
	}
	r.b[r.next] = b
	r.next = (r.next + 1) % len(r.b)
	r.n = min(r.n+1, len(r.b))
	return false
}

func (kb *keyBuild) drop() {
	kb.complete = false
	kb.n, kb.values = 0, [len(kindOrder)]map[string]*[]uint32{}
}

func appendTagString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// encode serialises the index, keys and values sorted so that equal blocks encode
// equally.
func (x *tagIndexer) encode() []byte {
	var keys []tagKey
	for sc, m := range x.keys {
		for k := range m {
			keys = append(keys, tagKey{byte(sc), k})
		}
	}
	slices.SortFunc(keys, func(a, b tagKey) int {
		if a.scope != b.scope {
			return int(a.scope) - int(b.scope)
		}
		return strings.Compare(a.key, b.key)
	})
	b := []byte(tagsMagic)
	b = binary.AppendUvarint(b, uint64(len(keys)))
	b = append(b, boolByte(x.keysComplete))
	var post []byte
	for _, k := range keys {
		kb := x.keys[k.scope][k.key]
		b = append(b, k.scope)
		b = appendTagString(b, k.key)
		b = append(b, boolByte(kb.complete))
		b = binary.AppendUvarint(b, uint64(kb.n))
		for slot, kind := range kindOrder {
			values := kb.values[slot]
			for _, v := range slices.Sorted(maps.Keys(values)) {
				b, post = appendPosting(b, post, kindNames[kind], v, *values[v])
			}
		}
	}
	return zstdEncoder.EncodeAll(b, nil)
}

// appendPosting appends one value of a key and its trace ordinals, delta
// encoded in post (a reused buffer).
func appendPosting(b, post []byte, kind, text string, ords []uint32) ([]byte, []byte) {
	b = appendTagString(b, kind)
	b = appendTagString(b, text)
	b = binary.AppendUvarint(b, uint64(len(ords)))
	post = post[:0]
	prev := uint32(0)
	for _, o := range ords {
		post = binary.AppendUvarint(post, uint64(o-prev))
		prev = o
	}
	b = binary.AppendUvarint(b, uint64(len(post)))
	return append(b, post...), post
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

var (
	// Tags objects are small and written one block at a time: one encoder with a
	// small window keeps its history from taking tens of MB for good.
	zstdEncoder, _ = zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithEncoderConcurrency(1), zstd.WithWindowSize(1<<20))
	zstdDecoder, _ = zstd.NewReader(nil, zstd.WithDecoderConcurrency(0), zstd.WithDecoderMaxMemory(1<<30))
)

// TagIndex is a decoded tags object.
type TagIndex struct {
	keys         map[tagKey]*keyPostings
	keysComplete bool
	traces       int
	size         int64 // bytes held, roughly
}

type keyPostings struct {
	complete bool
	values   []valuePostings
}

type valuePostings struct {
	typ, text string
	n         int
	post      []byte // delta-uvarint ordinals
}

var errTags = errors.New("corrupt tags object")

// decodeTags parses a tags object of a block holding traces traces.
func decodeTags(z []byte, traces int) (*TagIndex, error) {
	b, err := zstdDecoder.DecodeAll(z, nil)
	if err != nil {
		return nil, fmt.Errorf("decompress block tags: %w", err)
	}
	if !strings.HasPrefix(string(b), tagsMagic) {
		return nil, fmt.Errorf("decode block tags: %w: bad magic", errTags)
	}
	d := tagDecoder{b: b[len(tagsMagic):]}
	nkeys := d.count()
	// The postings alias b; strings are copies. Each value and key costs about
	// 80 bytes of headers on top.
	ti := &TagIndex{keys: make(map[tagKey]*keyPostings, nkeys), keysComplete: d.byte1() == 1, traces: traces,
		size: int64(len(b)) + int64(nkeys)*80}
	for range nkeys {
		k := tagKey{scope: d.byte1(), key: d.string()}
		kp := &keyPostings{complete: d.byte1() == 1}
		nvals := d.count()
		for range nvals {
			v := valuePostings{typ: d.string(), text: d.string(), n: d.count()}
			v.post = d.bytes()
			if v.n > traces {
				d.err = errTags
			}
			kp.values = append(kp.values, v)
			ti.size += int64(len(v.typ)+len(v.text)) + 80
		}
		if d.err != nil {
			return nil, fmt.Errorf("decode block tags: %w", d.err)
		}
		ti.keys[k] = kp
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errTags
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode block tags: %w", d.err)
	}
	return ti, nil
}

type tagDecoder struct {
	b   []byte
	err error
}

func (d *tagDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err, d.b = errTags, nil
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length that must fit in what is left (each item takes a byte).
func (d *tagDecoder) count() int {
	n := d.uvarint()
	if n > uint64(len(d.b)) {
		d.err, d.b = errTags, nil
		return 0
	}
	return int(n)
}

func (d *tagDecoder) bytes() []byte {
	n := d.count()
	if d.err != nil {
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *tagDecoder) string() string { return string(d.bytes()) }

func (d *tagDecoder) byte1() byte {
	if d.err != nil || len(d.b) == 0 {
		d.err, d.b = errTags, nil
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

// Postings returns the sorted ordinals of the traces that hold key (in scope) with a
// value for which match is true (match nil: any value). ok is false when the index
// cannot tell, and then every trace must be considered.
func (t *TagIndex) Postings(scope byte, key string, match func(typ, text string) bool) (ords []uint32, ok bool) {
	kp := t.keys[tagKey{scope, key}]
	if kp == nil {
		return nil, t.keysComplete // absent: no trace has it, if no key was dropped
	}
	if !kp.complete {
		return nil, false
	}
	var lists [][]uint32
	for i := range kp.values {
		v := &kp.values[i]
		if match == nil || match(v.typ, v.text) {
			lists = append(lists, v.ordinals(t.traces))
		}
	}
	return Union(lists...), true
}

// ordinals decodes a posting list, stopping at the first ordinal out of range so that
// a damaged object cannot point outside the block.
func (v *valuePostings) ordinals(traces int) []uint32 {
	out := make([]uint32, 0, v.n)
	b, prev := v.post, uint64(0)
	for len(b) > 0 {
		d, n := binary.Uvarint(b)
		if n <= 0 || prev+d >= uint64(traces) {
			break
		}
		prev += d
		out = append(out, uint32(prev))
		b = b[n:]
	}
	return out
}

// Union merges sorted ordinal lists.
func Union(lists ...[]uint32) []uint32 {
	switch len(lists) {
	case 0:
		return []uint32{}
	case 1:
		return lists[0]
	}
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	out := make([]uint32, 0, n)
	for _, l := range lists {
		out = append(out, l...)
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Intersect returns the ordinals in both sorted lists.
func Intersect(a, b []uint32) []uint32 {
	out := make([]uint32, 0, min(len(a), len(b)))
	for i, j := 0, 0; i < len(a) && j < len(b); {
		switch {
		case a[i] < b[j]:
			i++
		case a[i] > b[j]:
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	return out
}
