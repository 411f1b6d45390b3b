package limits

import (
	"errors"
	"strings"
	"testing"
)

// A query is refused at the charge that would pass its own bound (naming the
// setting) or what the shared budget has left, keeps what it was granted,
// and gives it all back on Release.
func TestQueryMemoryCharges(t *testing.T) {
	shared := NewInflight(1000)
	a := NewQueryMemory(600, "x.query_max_memory_bytes", shared)
	if err := a.Charge(500); err != nil {
		t.Fatal(err)
	}
	err := a.Charge(200)
	if !errors.Is(err, ErrQueryMemory) || !strings.Contains(err.Error(), "x.query_max_memory_bytes (600)") {
		t.Errorf("700 of a 600 bound: %v", err)
	}
	b := NewQueryMemory(600, "x", shared)
	if err := b.Charge(400); err != nil {
		t.Fatal(err)
	}
	if err := b.Charge(200); !errors.Is(err, ErrQueriesBusy) {
		t.Errorf("1100 of a shared 1000: %v", err)
	}
	if a.Used() != 500 || b.Used() != 400 || shared.InUse() != 900 {
		t.Errorf("held %d + %d, shared %d; want 500 + 400 = 900", a.Used(), b.Used(), shared.InUse())
	}
	a.Release()
	b.Release()
	if shared.InUse() != 0 {
		t.Errorf("shared budget holds %d after both released", shared.InUse())
	}
	var none *QueryMemory
	if err := none.Charge(1 << 40); err != nil {
		t.Errorf("a nil QueryMemory refused: %v", err)
	}
}
