// Package depsanchor pins the project's main dependencies in go.mod while the
// packages that use them are being written. Delete once every import is real.
package depsanchor

import (
	_ "connectrpc.com/connect"
	_ "github.com/bits-and-blooms/bloom/v3"
	_ "github.com/google/pprof/profile"
	_ "github.com/grafana/pyroscope-go"
	_ "github.com/grafana/pyroscope/api/gen/proto/go/querier/v1/querierv1connect"
	_ "github.com/grafana/pyroscope/api/gen/proto/go/push/v1/pushv1connect"
	_ "github.com/grafana/pyroscope/api/gen/proto/go/settings/v1/settingsv1connect"
	_ "github.com/klauspost/compress/gzip"
	_ "github.com/klauspost/compress/snappy"
	_ "github.com/klauspost/compress/zstd"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/oklog/run"
	_ "github.com/parquet-go/parquet-go"
	_ "github.com/prometheus/client_golang/prometheus/promhttp"
	_ "github.com/prometheus/prometheus/promql"
	_ "github.com/prometheus/prometheus/storage/remote"
	_ "github.com/prometheus/prometheus/tsdb"
	_ "github.com/prometheus/prometheus/web/api/v1"
	_ "go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	_ "go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetricgrpc"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlpmetric/otlpmetrichttp"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	_ "go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	_ "go.opentelemetry.io/otel/sdk/metric"
	_ "go.opentelemetry.io/otel/sdk/trace"
	_ "google.golang.org/grpc"
	_ "gopkg.in/yaml.v3"
)
