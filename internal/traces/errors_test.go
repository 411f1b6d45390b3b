package traces

import (
	"errors"

	"go.opentelemetry.io/collector/pdata/ptrace"

	"github.com/vispyr/vispyr/internal/traces/spanrow"
)

var errorsIs = errors.Is

func spanrowFromTraces(td ptrace.Traces) ([]spanrow.Span, error) { return spanrow.FromTraces(td, nil) }
