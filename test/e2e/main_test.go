// Package e2e runs `vispyr serve` as a real child process and drives it with
// real peers (Prometheus, node_exporter, telemetrygen, promtool, the OTel Go
// SDK), checking what a user would see.
package e2e

import (
	"testing"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }
