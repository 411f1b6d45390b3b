#!/usr/bin/env bash
# Peers for the trace store's tests: MinIO (S3 backend) and telemetrygen (load).
set -euo pipefail
export PATH="$PATH:$(go env GOPATH)/bin"
command -v minio >/dev/null || (cd / && go install github.com/minio/minio@v0.0.0-20260212201848-7aac2a2c5b7c)
command -v telemetrygen >/dev/null || (cd / && go install github.com/open-telemetry/opentelemetry-collector-contrib/cmd/telemetrygen@v0.161.0)
