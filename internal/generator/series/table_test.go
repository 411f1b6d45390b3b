package series

import (
	"fmt"
	"strings"
	"testing"
)

func TestTableKeepsTuplesApart(t *testing.T) {
	tbl := NewTable[int]()
	tuples := [][]string{{"ab", "c"}, {"a", "bc"}, {"abc", ""}, {"", "abc"}, {"a", "b", "c"}}
	for i, v := range tuples {
		h := tbl.Hash(v)
		if tbl.Get(h, v) != nil {
			t.Fatalf("%q found before insert", v)
		}
		*tbl.Insert(h, v) = i
	}
	for i, v := range tuples {
		if e := tbl.Get(tbl.Hash(v), v); e == nil || *e != i {
			t.Errorf("%q → %v, want %d", v, e, i)
		}
	}
	if tbl.Len() != len(tuples) {
		t.Errorf("len = %d", tbl.Len())
	}
}

func TestTableCopiesValues(t *testing.T) {
	tbl := NewTable[int]()
	buf := []byte("service-a")
	v := []string{string(buf)}
	tbl.Insert(tbl.Hash(v), v)
	v[0] = "changed"
	tbl.Range(func(values []string, _ *int) bool {
		if values[0] != "service-a" {
			t.Errorf("stored %q", values[0])
		}
		return true
	})
}

func TestTableRangeDeletes(t *testing.T) {
	tbl := NewTable[int]()
	for i := 0; i < 100; i++ {
		v := []string{fmt.Sprint(i)}
		*tbl.Insert(tbl.Hash(v), v) = i
	}
	tbl.Range(func(_ []string, e *int) bool { return *e%3 == 0 })
	if tbl.Len() != 34 {
		t.Fatalf("len after delete = %d, want 34", tbl.Len())
	}
	for i := 0; i < 100; i++ {
		v := []string{fmt.Sprint(i)}
		if found := tbl.Get(tbl.Hash(v), v) != nil; found != (i%3 == 0) {
			t.Errorf("%d found = %v", i, found)
		}
	}
}

func TestCleanValue(t *testing.T) {
	f := func(in, want string) {
		t.Helper()
		if got := CleanValue(in); got != want {
			t.Errorf("CleanValue(%.20q…) = %.20q…, want %.20q…", in, got, want)
		}
	}
	f("GET /users", "GET /users")
	f("a\xffb", "a\uFFFDb")
	f(strings.Repeat("x", 3000), strings.Repeat("x", 2048))
	// 2047 ASCII bytes then a 2-byte rune across the limit: the rune goes.
	f(strings.Repeat("x", 2047)+"éé", strings.Repeat("x", 2047))
}

func TestHistogramObserve(t *testing.T) {
	bounds := []float64{0.1, 1}
	h := NewHistogram(bounds)
	h.Observe(bounds, 0.1, [16]byte{1}, [8]byte{1}) // le is inclusive
	h.Observe(bounds, 0.5, [16]byte{}, [8]byte{})   // no trace: no exemplar
	h.Observe(bounds, 7, [16]byte{3}, [8]byte{3})
	if fmt.Sprint(h.Counts) != "[1 1 1]" || h.Count != 3 || h.Sum != 7.6 {
		t.Errorf("histogram = %+v", h)
	}
	if !h.Exemplars[0].Set || h.Exemplars[1].Set || h.Exemplars[2].TraceID != [16]byte{3} {
		t.Errorf("exemplars = %+v", h.Exemplars)
	}
}
