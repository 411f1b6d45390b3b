// Command lokiclient pushes log lines to a Loki push endpoint with Grafana's
// Go Loki client, github.com/grafana/loki-client-go (Apache-2.0, promtail's
// batching client on its own), for test/e2e TestLokiGoClientPush. It is its
// own module because that client builds against an older Prometheus than
// Vispyr's.
//
// Usage: lokiclient -url URL [-tenant T] [-json] < entries
//
// Each stdin line is one entry: {"labels":{...},"ts":<unix ns>,"line":"...",
// "meta":{...}}. It exits once the client has sent every batch; a batch the
// server refused is reported on stderr and fails the run.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/go-kit/kit/log"
	"github.com/grafana/loki-client-go/loki"
	"github.com/grafana/loki/pkg/push"
	"github.com/prometheus/common/model"
)

type entry struct {
	Labels map[string]string `json:"labels"`
	TS     int64             `json:"ts"`
	Line   string            `json:"line"`
	Meta   map[string]string `json:"meta"`
}

// errorCounter counts the client's error logs (a dropped batch is one).
type errorCounter struct{ n atomic.Int64 }

func (c *errorCounter) Log(kv ...any) error {
	line := fmt.Sprintln(kv...)
	if strings.Contains(line, "error") {
		c.n.Add(1)
		fmt.Fprint(os.Stderr, "lokiclient: ", line)
	}
	return nil
}

func main() {
	url := flag.String("url", "", "push URL")
	tenant := flag.String("tenant", "", "X-Scope-OrgID")
	asJSON := flag.Bool("json", false, "send JSON instead of snappy protobuf")
	flag.Parse()
	if err := run(*url, *tenant, *asJSON); err != nil {
		fmt.Fprintln(os.Stderr, "lokiclient:", err)
		os.Exit(1)
	}
}

func run(url, tenant string, asJSON bool) error {
	cfg, err := loki.NewDefaultConfig(url)
	if err != nil {
		return err
	}
	cfg.TenantID = tenant
	cfg.EncodeJson = asJSON
	cfg.BatchWait = 50 * time.Millisecond
	cfg.BatchSize = 2 << 10 // several batches per run
	cfg.BackoffConfig.MaxRetries = 2
	errs := &errorCounter{}
	c, err := loki.NewWithLogger(cfg, log.Logger(errs))
	if err != nil {
		return err
	}
	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(nil, 1<<20)
	n := 0
	for sc.Scan() {
		var e entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return err
		}
		ls := model.LabelSet{}
		for k, v := range e.Labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		var meta push.LabelsAdapter
		for k, v := range e.Meta {
			meta = append(meta, push.LabelAdapter{Name: k, Value: v})
		}
		if err := c.HandleWithMetadata(ls, time.Unix(0, e.TS), e.Line, meta); err != nil {
			return err
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return err
	}
	c.Stop() // sends what it still holds
	if errs.n.Load() > 0 {
		return fmt.Errorf("%d client errors pushing %d entries", errs.n.Load(), n)
	}
	return nil
}
