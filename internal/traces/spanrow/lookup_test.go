package spanrow

import (
	"math"
	"strings"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// Every value type renders as pdata's AsString renders it, which the
// generator's labels were built from when it read pdata.
func TestLookupStringMatchesAsString(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("str", "GET")
	m.PutStr("empty str", "")
	m.PutInt("int", -42)
	m.PutInt("big int", math.MaxInt64)
	m.PutBool("bool", true)
	m.PutBool("false", false)
	m.PutDouble("double", 0.25)
	m.PutDouble("tiny", 1e-7)
	m.PutDouble("huge", 1e21)
	m.PutDouble("nan", math.NaN())
	m.PutDouble("inf", math.Inf(-1))
	m.PutEmptyBytes("bytes").FromRaw([]byte{0, 1, 2, 0xff})
	m.PutEmptyBytes("no bytes")
	s := m.PutEmptySlice("slice")
	s.AppendEmpty().SetStr("<a&b>")
	s.AppendEmpty().SetInt(7)
	s.AppendEmpty()
	n := m.PutEmptyMap("map")
	n.PutEmptyMap("deeper").PutDouble("x", 1.5)
	n.PutStr("k", "v")
	m.PutEmpty("nothing")
	m.PutStr(strings.Repeat("k", 300), "long key")
	b := AppendMap(nil, m)
	checkLookups(t, b, m)
	if _, ok := Lookup(b, "str "); ok {
		t.Error("Lookup matched a key by prefix")
	}
}

func TestLookupStringDoesNotAllocate(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("http.method", "GET")
	m.PutEmptySlice("before").AppendEmpty().SetEmptyMap().PutStr("a", "b")
	m.PutStr("http.route", "/items/{id}")
	b := AppendMap(nil, m)
	var got string
	if a := testing.AllocsPerRun(100, func() { got, _ = LookupString(b, "http.route") }); a != 0 {
		t.Errorf("LookupString allocates %v times", a)
	}
	if got != "/items/{id}" {
		t.Errorf("got %q", got)
	}
}

// A resource blob's attributes are found behind its schema URL and dropped count.
func TestLookupResource(t *testing.T) {
	r := pcommon.NewResource()
	r.Attributes().PutStr("service.name", "checkout")
	r.Attributes().PutInt("service.instance.id", 3)
	r.SetDroppedAttributesCount(300)
	attrs, ok := ResourceAttrs(encodeResource("https://example.com/schema", r))
	if !ok {
		t.Fatal("no attributes")
	}
	checkLookups(t, attrs, r.Attributes())
}

// Corrupt blobs report keys as absent rather than panicking or reading past the end.
func TestLookupCorrupt(t *testing.T) {
	m := pcommon.NewMap()
	m.PutStr("a", "b")
	m.PutEmptyMap("m").PutStr("c", "d")
	m.PutStr("z", "y")
	b := AppendMap(nil, m)
	for cut := 0; cut < len(b); cut++ {
		if v, ok := LookupString(b[:cut], "z"); ok {
			t.Errorf("cut at %d: found z = %q", cut, v)
		}
	}
	bad := append([]byte(nil), b...)
	bad[3] = 99 // the type byte of a's value
	if _, ok := Lookup(bad, "z"); ok {
		t.Error("found a key after an unknown value type")
	}
	if got := Value([]byte{99}).AsString(); got != "" {
		t.Errorf("unknown type renders as %q", got)
	}
}
