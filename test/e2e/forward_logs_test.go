package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

// corpusLines is what vispyrLines answers for every line of c: "ns|line" sorted.
func corpusLines(t *testing.T, c logCorpus) []string {
	var body struct {
		Streams []struct {
			Values [][2]string `json:"values"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(c.body, &body); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, s := range body.Streams {
		for _, v := range s.Values {
			out = append(out, v[0]+"|"+v[1])
		}
	}
	slices.Sort(out)
	return out
}

// Loki pushes to the gateway arrive at a second Vispyr's :3100, line for
// line with their structured metadata, across an outage of the destination
// and a kill -9 of the gateway holding the backlog.
func TestGatewayForwardsLogs(t *testing.T) {
	t.Parallel()
	peer := harness.Start(t, harness.Options{})
	gw := harness.Start(t, harness.Options{Command: "gateway", Config: fmt.Sprintf(`
forward:
  logs:
    - name: peer
      url: http://%s
      queue: {batch_deadline: 100ms, min_backoff: 50ms, max_backoff: 500ms}
`, peer.LokiAddr)})

	at := time.Now().Add(-time.Minute)
	meta := fmt.Sprintf(`{"streams":[{"stream":{"service_name":"fw-meta"},"values":[["%d","checkout failed",{"trace_id":"0af7651916cd43dd8448eb211c80319c"}]]}]}`, at.UnixNano())
	pushLoki(t, "http://"+gw.LokiAddr+"/loki/api/v1/push", []byte(meta))
	q := logCorpus{start: at.Add(-time.Second), end: at.Add(time.Second)}
	harness.Eventually(t, 20*time.Second, func() (bool, string) {
		got := vispyrLines(t, "http://"+peer.LokiAddr, `{service_name="fw-meta"} | trace_id="0af7651916cd43dd8448eb211c80319c"`, q)
		return len(got) == 1 && strings.HasSuffix(got[0], "|checkout failed"), fmt.Sprintf("second vispyr answers %q for the line by its trace_id", got)
	})

	if err := peer.Stop(); err != nil {
		t.Logf("stop second vispyr: %v", err)
	}
	c := newLogCorpus()
	pushLoki(t, "http://"+gw.LokiAddr+"/loki/api/v1/push", c.body)
	time.Sleep(500 * time.Millisecond)
	gw.Kill9()
	gw.Restart()
	peer.Restart()

	want := corpusLines(t, c)
	harness.Eventually(t, 30*time.Second, func() (bool, string) {
		got := vispyrLines(t, "http://"+peer.LokiAddr, `{service_name=~"app.+"}`, c)
		return slices.Equal(got, want), fmt.Sprintf("second vispyr holds %d lines, the gateway acknowledged %d; first difference: %s", len(got), len(want), firstDiff(got, want))
	})
}
