#!/usr/bin/env bash
# Installs Jaeger v2 (cmd/jaeger of the Jaeger Go module), the trace backend the
# gateway's trace-forwarding tests send OTLP to. Jaeger's go.mod has replace
# directives, so `go install pkg@version` refuses it: it is built as a tool of a
# scratch module instead. Idempotent, non-interactive.
set -euo pipefail

command -v go >/dev/null || export PATH="$PATH:/usr/local/go/bin"
JAEGER_VERSION=v1.75.0
GOBIN_DIR="$(go env GOBIN)"
[ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH | cut -d: -f1)/bin"

have=""
if [ -x "$GOBIN_DIR/jaeger" ]; then
	have="$(go version -m "$GOBIN_DIR/jaeger" 2>/dev/null | awk '$1=="dep" && $2=="github.com/jaegertracing/jaeger"{print $3}')"
fi
if [ "$have" != "$JAEGER_VERSION" ]; then
	scratch="$(mktemp -d)"
	trap 'rm -rf "$scratch"' EXIT
	(
		cd "$scratch"
		go mod init vispyr-ci/jaeger >/dev/null 2>&1
		GOFLAGS=-mod=mod go get -tool "github.com/jaegertracing/jaeger/cmd/jaeger@${JAEGER_VERSION}"
		GOFLAGS=-mod=mod go build -o "$GOBIN_DIR/jaeger" github.com/jaegertracing/jaeger/cmd/jaeger
	)
fi
[ -x "$GOBIN_DIR/jaeger" ] || { echo "35-jaeger.sh: jaeger missing after install" >&2; exit 1; }
echo "35-jaeger.sh: jaeger $JAEGER_VERSION ready"
