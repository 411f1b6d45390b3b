// Package alerting runs `vispyr serve` with a Prometheus configuration file
// against real peers: node_exporter scraped, Alertmanager receiving the alerts
// of Vispyr's shipped rules, rule files reloaded.
package alerting

import (
	"testing"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
