package limits

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// A body is charged as it grows, never more than twice what arrived, and the
// charge is refused once the budget is spent.
func TestReadAllChargesAsBytesArrive(t *testing.T) {
	budget := NewInflight(1 << 20)
	body := bytes.Repeat([]byte("x"), 300<<10)
	out, charged, err := ReadAll(bytes.NewReader(body), 10<<20, budget, nil)
	if err != nil || !bytes.Equal(out, body) {
		t.Fatalf("ReadAll: %v (%d bytes)", err, len(out))
	}
	if charged < int64(len(body)) || charged > 2*int64(len(body)) || budget.InUse() != charged {
		t.Errorf("charged %d (budget in use %d) for %d bytes", charged, budget.InUse(), len(body))
	}
	budget.Release(charged)

	// Over the budget: refused once the arrived bytes no longer fit.
	_, charged, err = ReadAll(bytes.NewReader(make([]byte, 2<<20)), 10<<20, budget, nil)
	if !errors.Is(err, ErrOverloaded) || charged > 1<<20 {
		t.Errorf("2 MiB into a 1 MiB budget: %v, charged %d", err, charged)
	}
	budget.Release(charged)

	// Over the size limit.
	if _, charged, err = ReadAll(bytes.NewReader(make([]byte, 100)), 99, budget, nil); !errors.Is(err, ErrTooLarge) {
		t.Errorf("100 bytes over a 99 limit: %v", err)
	}
	budget.Release(charged)
	if budget.InUse() != 0 {
		t.Errorf("budget in use %d after releases", budget.InUse())
	}
}

// A declared length allocates nothing: a reader that stalls after one byte
// holds only the first chunk.
func TestReadAllIgnoresDeclaredLength(t *testing.T) {
	budget := NewInflight(1 << 30)
	r := io.MultiReader(bytes.NewReader([]byte{1}), errReader{})
	_, charged, err := ReadAll(r, 64<<20, budget, nil)
	if err == nil || charged > minChunk {
		t.Errorf("stalled body: %v, charged %d, want an error and at most %d", err, charged, minChunk)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrUnexpectedEOF }
