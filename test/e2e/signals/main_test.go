// Package signals drives a real `vispyr serve` with real trace and profile
// clients (telemetrygen, the OTel Go SDK, pyroscope-go) and checks what a user
// sees across signals: traces by ID and search, span metrics and the service graph
// in PromQL, exemplars pointing at traces, and a span's profile.
package signals

import (
	"testing"

	"github.com/vispyr/vispyr/test/e2e/harness"
)

func TestMain(m *testing.M) { harness.Main(m) }

// fastGenerator makes span metrics visible within a second instead of Tempo's 15 s.
const fastGenerator = "generator:\n  collection_interval: 1s\n"
