package block

import (
	"context"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vispyr/vispyr/internal/traces/backend"
)

// countingBackend counts reads of index objects.
type countingBackend struct {
	backend.Raw
	indexReads atomic.Int64
}

func (c *countingBackend) Read(ctx context.Context, name string) ([]byte, error) {
	if strings.HasSuffix(name, "/"+IndexName) {
		c.indexReads.Add(1)
	}
	return c.Raw.Read(ctx, name)
}

func TestIndexCacheKeepsMemoryBoundedAndLookupsRight(t *testing.T) {
	ctx := context.Background()
	local, _ := backend.NewLocal(t.TempDir())
	be := &countingBackend{Raw: local}
	rows := tagRows(t, 2000)
	var ids []string
	for i := range 4 {
		id := fmt.Sprint("b", i)
		if _, err := Write(ctx, be, "t", id, 0, rows); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	// Room for about two blocks' indexes.
	probe, _ := Open(ctx, be, nil, "t", "b0")
	x, err := probe.indexes(ctx, false)
	if err != nil {
		t.Fatal(err)
	}
	one := x.size()
	cache := NewIndexCache(2*one + one/2)
	var readers []*Reader
	for _, id := range ids {
		r, err := Open(ctx, be, cache, "t", id)
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		readers = append(readers, r)
	}
	be.indexReads.Store(0)
	for round := range 3 {
		for _, r := range readers {
			for _, i := range []int{0, 777, 1999} {
				spans, err := r.Trace(ctx, rows[2*i].TraceID)
				if err != nil || len(spans) != 2 {
					t.Fatalf("round %d block %s trace %d: %d spans, %v", round, r.Meta.ID, i, len(spans), err)
				}
			}
			if used := cache.Used(); used > 2*one+one/2 {
				t.Fatalf("cache holds %d bytes, budget %d", used, 2*one+one/2)
			}
		}
	}
	// Cycling through 4 blocks with room for 2 re-reads each block every round.
	if n := be.indexReads.Load(); n != 12 {
		t.Errorf("%d index reads over 3 rounds of 4 blocks, want 12", n)
	}
	readers[0].Close()
	if used := cache.Used(); used > 2*one {
		t.Errorf("closing a block left %d bytes cached", used)
	}
}
