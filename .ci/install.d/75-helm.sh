#!/usr/bin/env bash
# Helm's CLI, which the chart test (deploy/helm) renders deploy/helm/vispyr
# with. Built from its Go module; idempotent, non-interactive.
set -euo pipefail
command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
HELM_VERSION=v3.21.4
GOBIN_DIR="$(go env GOBIN)"
[ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH | cut -d: -f1)/bin"
have=""
if [ -x "$GOBIN_DIR/helm" ]; then
	have="$(go version -m "$GOBIN_DIR/helm" 2>/dev/null | awk '$1=="mod"{print $3}')"
fi
if [ "$have" != "$HELM_VERSION" ]; then
	(cd / && GOFLAGS=-mod=mod go install "helm.sh/helm/v3/cmd/helm@${HELM_VERSION}")
fi
echo "75-helm.sh: helm $("$GOBIN_DIR/helm" version --short) ready"
