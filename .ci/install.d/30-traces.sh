#!/usr/bin/env bash
# Peers for the trace store's tests: MinIO (S3 backend) and telemetrygen (load).
set -euo pipefail
export PATH="$PATH:$(go env GOPATH)/bin"
command -v minio >/dev/null || go install github.com/minio/minio@latest
command -v telemetrygen >/dev/null || go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@latest
