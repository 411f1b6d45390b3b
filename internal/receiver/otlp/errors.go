// Package otlp receives OpenTelemetry traces and metrics over gRPC and HTTP
// (protobuf or JSON, gzip or zstd) and hands them to the pipeline's consumers.
package otlp

import (
	"errors"
	"net/http"
	"strconv"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/vispyr/vispyr/internal/limits"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// httpStatus maps a consumer error to the code OTLP/HTTP clients act on: 400 is
// final, 429 and 503 are retried.
func httpStatus(err error) int {
	switch {
	case pipeline.IsInvalid(err):
		return http.StatusBadRequest
	case errors.Is(err, pipeline.ErrOverloaded):
		return http.StatusTooManyRequests
	case pipeline.IsDiskFull(err):
		// Not 507: OTLP/HTTP clients retry only 429, 502, 503 and 504.
		return http.StatusServiceUnavailable
	default:
		return http.StatusServiceUnavailable
	}
}

// grpcStatus maps a consumer error to the gRPC status OTLP clients act on:
// INVALID_ARGUMENT is final, RESOURCE_EXHAUSTED (with RetryInfo) and UNAVAILABLE
// are retried.
func grpcStatus(err error) error {
	switch {
	case pipeline.IsInvalid(err):
		return status.Error(codes.InvalidArgument, err.Error())
	case errors.Is(err, pipeline.ErrOverloaded), pipeline.IsDiskFull(err):
		// RESOURCE_EXHAUSTED is retried when it carries RetryInfo.
		return overloadedStatus(err.Error())
	default:
		return status.Error(codes.Unavailable, err.Error())
	}
}

func overloadedStatus(msg string) error {
	st := status.New(codes.ResourceExhausted, msg)
	if withInfo, err := st.WithDetails(&errdetails.RetryInfo{RetryDelay: durationpb.New(limits.RetryAfter)}); err == nil {
		st = withInfo
	}
	return st.Err()
}

func setRetryAfter(w http.ResponseWriter, code int) {
	if code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable {
		w.Header().Set("Retry-After", strconv.Itoa(int(limits.RetryAfter.Seconds())))
	}
}
