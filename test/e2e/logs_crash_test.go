package e2e

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/test/e2e/harness"
)

// TestLogsKill9LosesNoAcknowledgedLine pushes Loki JSON from four writers, kills
// Vispyr with SIGKILL mid-stream, and then opens the data dir's log store: every
// line that got a 204 is there.
func TestLogsKill9LosesNoAcknowledgedLine(t *testing.T) {
	dir := t.TempDir()
	v := harness.Start(t, harness.Options{DataDir: dir})
	base := time.Now()
	client := &http.Client{Timeout: 10 * time.Second}
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				line := fmt.Sprintf("writer=%d seq=%d", w, i)
				body := fmt.Sprintf(`{"streams":[{"stream":{"job":"crash","w":"%d"},"values":[["%d",%q]]}]}`,
					w, base.Add(time.Duration(i)*time.Microsecond).UnixNano(), line)
				resp, err := client.Post("http://"+v.LokiAddr+"/loki/api/v1/push", "application/json", strings.NewReader(body))
				if err != nil {
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusNoContent {
					return
				}
				mu.Lock()
				acked[line] = true
				mu.Unlock()
			}
		}()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 400 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	v.Kill9()
	close(stop)
	wg.Wait()
	if len(acked) < 100 {
		t.Fatalf("only %d lines acknowledged before the kill", len(acked))
	}

	st, err := logs.Open(filepath.Join(dir, "logs"), logs.Config{}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	it, err := st.Select(context.Background(), "single-tenant", logs.SelectParams{
		Matchers: []*labels.Matcher{labels.MustNewMatcher(labels.MatchEqual, "service_name", "crash")},
		Start:    base.UnixNano(), End: base.Add(time.Hour).UnixNano(), Direction: logs.Forward})
	if err != nil {
		t.Fatal(err)
	}
	found := map[string]bool{}
	for it.Next() {
		_, e := it.At()
		found[e.Line] = true
	}
	for line := range acked {
		if !found[line] {
			t.Fatalf("acknowledged line %q lost after kill -9 (%d acknowledged, %d found)", line, len(acked), len(found))
		}
	}
	t.Logf("%d acknowledged lines, all found after kill -9", len(acked))
}
