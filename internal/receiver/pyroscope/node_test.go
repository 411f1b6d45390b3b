package pyroscope_test

import (
	"context"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"connectrpc.com/connect"
	querierv1 "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1"
	"github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
)

// nodeBinary finds node and the installed npm packages; like internal/testpeer it
// fails under CI=true when they are missing and skips otherwise.
func nodeBinary(t *testing.T) string {
	t.Helper()
	node, err := exec.LookPath("node")
	if err == nil {
		if _, err = os.Stat(filepath.Join("testdata", "node", "node_modules", "pyroscope-06")); err != nil {
			err = errNoModules
		}
	}
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("node test peer missing (run .ci/install.d/40-profiles.sh): %v", err)
		}
		t.Skipf("node test peer missing: %v", err)
	}
	return node
}

var errNoModules = errorString("testdata/node/node_modules missing: run npm ci there")

type errorString string

func (e errorString) Error() string { return string(e) }

// TestNodeSDK runs @pyroscope/nodejs 0.4.5 (multipart, no format) and 0.6.4
// (format=pprof raw body) and reads back wall and heap profiles.
func TestNodeSDK(t *testing.T) {
	node := nodeBinary(t)
	for _, tc := range []struct{ module, app, wantQuery string }{
		{"pyroscope-04", "node-04", ""},
		{"pyroscope-06", "node-06", "format=pprof"},
	} {
		t.Run(tc.module, func(t *testing.T) {
			store := openStore(t, t.TempDir())
			defer store.Close()
			var mu sync.Mutex
			var queries []string
			srv := server(t, store, func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if strings.Contains(r.URL.Path, "ingest") {
						mu.Lock()
						queries = append(queries, r.URL.RawQuery+" "+r.Header.Get("Content-Type"))
						mu.Unlock()
					}
					next.ServeHTTP(w, r)
				})
			})
			start := time.Now().Add(-time.Minute)
			cmd := exec.Command(node, "app.js", tc.module, srv.URL, tc.app)
			cmd.Dir = filepath.Join("testdata", "node")
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			end := time.Now().Add(time.Minute)
			mu.Lock()
			t.Logf("ingest requests: %q", queries)
			if tc.wantQuery != "" && !strings.Contains(strings.Join(queries, "\n"), tc.wantQuery) {
				t.Errorf("client did not send %s", tc.wantQuery)
			}
			mu.Unlock()

			client := querierv1connect.NewQuerierServiceClient(http.DefaultClient, srv.URL)
			ctx := context.Background()
			types, err := client.ProfileTypes(ctx, connect.NewRequest(&querierv1.ProfileTypesRequest{Start: start.UnixMilli(), End: end.UnixMilli()}))
			if err != nil {
				t.Fatal(err)
			}
			var wall, heap string
			for _, pt := range types.Msg.ProfileTypes {
				t.Logf("profile type %s", pt.ID)
				switch {
				case pt.Name == "wall" && pt.SampleType == "wall":
					wall = pt.ID
				case pt.Name == "memory" && pt.SampleType == "inuse_space":
					heap = pt.ID
				}
			}
			if wall == "" || heap == "" {
				t.Fatalf("want wall and memory:inuse_space profile types, got %v", types.Msg.ProfileTypes)
			}
			for _, id := range []string{wall, heap} {
				fg, err := client.SelectMergeStacktraces(ctx, connect.NewRequest(&querierv1.SelectMergeStacktracesRequest{
					ProfileTypeID: id, LabelSelector: `{service_name="` + tc.app + `",env="nodetest"}`,
					Start: start.UnixMilli(), End: end.UnixMilli(),
				}))
				if err != nil {
					t.Fatal(err)
				}
				g := fg.Msg.Flamegraph
				busy := nodeFunctionTotal(g, "vispyrNodeBusy")
				t.Logf("%s: total %d, vispyrNodeBusy %d", id, g.Total, busy)
				if busy == 0 || busy > g.Total {
					t.Errorf("%s: vispyrNodeBusy missing from flame graph (names %d)", id, len(g.Names))
				}
				if id == wall && float64(busy)/float64(g.Total) < 0.3 {
					t.Errorf("wall share of vispyrNodeBusy %.2f: it ran most of the time", float64(busy)/float64(g.Total))
				}
			}
		})
	}
}

// nodeFunctionTotal sums nodes whose name mentions fn (Node names look like
// "./app.js:vispyrNodeBusy:20"), outermost only per level path is not needed here
// because the function does not recurse.
func nodeFunctionTotal(g *querierv1.FlameGraph, fn string) int64 {
	var sum int64
	for _, l := range g.Levels {
		for i := 0; i+3 < len(l.Values); i += 4 {
			if strings.Contains(g.Names[l.Values[i+3]], fn) {
				sum += l.Values[i+1]
			}
		}
	}
	return sum
}
