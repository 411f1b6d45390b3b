#!/usr/bin/env bash
# Installs VictoriaLogs (go install of app/victoria-logs), the independent log
# store the logs tests and bench/ feed the same data to, to check LogQL results
# and compare ingest figures, and fetches the Go Loki client the push test
# runs. Idempotent, non-interactive.
set -euo pipefail

command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
VICTORIALOGS_VERSION=v1.52.2
GOBIN_DIR="$(go env GOBIN)"
[ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH | cut -d: -f1)/bin"

have=""
if [ -x "$GOBIN_DIR/victoria-logs" ]; then
	have="$(go version -m "$GOBIN_DIR/victoria-logs" 2>/dev/null | awk '$1=="mod"{print $3}')"
fi
if [ "$have" != "$VICTORIALOGS_VERSION" ]; then
	# Outside the module so the project's go.mod is never touched.
	(cd / && GOFLAGS=-mod=mod go install "github.com/VictoriaMetrics/VictoriaLogs/app/victoria-logs@${VICTORIALOGS_VERSION}")
fi
"$GOBIN_DIR/victoria-logs" -version >/dev/null 2>&1 || "$GOBIN_DIR/victoria-logs" --help >/dev/null 2>&1 || true
[ -x "$GOBIN_DIR/victoria-logs" ] || { echo "45-logs.sh: victoria-logs missing after install" >&2; exit 1; }
echo "45-logs.sh: victoria-logs $VICTORIALOGS_VERSION ready"

# Grafana's Go Loki client (loki-client-go, Apache-2.0), built by test/e2e
# TestLokiGoClientPush from its own module, pinned by its go.sum.
(cd "$(dirname "$0")/../../test/e2e/testdata/lokiclient" && go mod download)
echo "45-logs.sh: loki-client-go modules ready"
