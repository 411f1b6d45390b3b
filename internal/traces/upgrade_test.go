package traces

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/traceql"
	"github.com/vispyr/vispyr/internal/traces/block"
)

// downgradeToFormat1 rewrites a block's objects as the first release wrote them:
// 24-byte index entries (ID, first row, rows), no tags object, format 1 in meta.
func downgradeToFormat1(t *testing.T, dir string) {
	t.Helper()
	idx, err := os.ReadFile(filepath.Join(dir, block.IndexName))
	if err != nil {
		t.Fatal(err)
	}
	n := int(binary.LittleEndian.Uint32(idx))
	old := idx[:4:4]
	for i := range n {
		old = append(old, idx[4+i*40:4+i*40+24]...)
	}
	var meta map[string]any
	raw, _ := os.ReadFile(filepath.Join(dir, block.MetaName))
	if err := json.Unmarshal(raw, &meta); err != nil {
		t.Fatal(err)
	}
	meta["format"], meta["indexBytes"] = 1, len(old)
	delete(meta, "tagsBytes")
	raw, _ = json.Marshal(meta)
	for name, b := range map[string][]byte{block.IndexName: old, block.MetaName: raw} {
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, block.TagsName)); err != nil {
		t.Fatal(err)
	}
}

func TestFormat1BlocksAreUpgradedOnOpen(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir, Config{})
	td := ptrace.NewTraces()
	base := time.Now().Add(-time.Minute)
	for i := range 50 {
		searchPiece(td, i, "backend", base)
	}
	if err := s.ConsumeTraces(ctx, td); err != nil {
		t.Fatal(err)
	}
	if err := s.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	s.Close()
	blockDirs, _ := filepath.Glob(filepath.Join(dir, "traces", "blocks", tenantDir(pipeline.DefaultTenant), "*"))
	if len(blockDirs) != 1 {
		t.Fatalf("%d block dirs", len(blockDirs))
	}
	downgradeToFormat1(t, blockDirs[0])

	s = openStore(t, dir, Config{})
	defer s.Close()
	after, _ := filepath.Glob(filepath.Join(dir, "traces", "blocks", tenantDir(pipeline.DefaultTenant), "*"))
	if len(after) != 1 || after[0] == blockDirs[0] {
		t.Fatalf("block dirs after open: %v (before: %v)", after, blockDirs)
	}
	for i := range 50 {
		mustFind(t, s, pipeline.DefaultTenant, i, 2)
	}
	q, _ := traceql.Parse(`{span.http.status_code = 500}`)
	res, _, err := s.Search(ctx, SearchRequest{Tenant: pipeline.DefaultTenant, Query: q, Limit: 100})
	if err != nil || len(res) != 16 {
		t.Fatalf("search after upgrade: %d traces, %v; want 16", len(res), err)
	}
}
