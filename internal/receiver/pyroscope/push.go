package pyroscope

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"connectrpc.com/connect"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"

	"github.com/vispyr/vispyr/internal/pipeline/profile"
	"github.com/vispyr/vispyr/internal/receiver/pyroscope/convert"
)

// pushService implements push.v1.PusherService over connect (proto and JSON).
type pushService struct{ h *handler }

func (s *pushService) Push(ctx context.Context, req *connect.Request[pushv1.PushRequest]) (*connect.Response[pushv1.PushResponse], error) {
	for i, sr := range req.Msg.Series {
		ls := map[string]string{}
		name := ""
		for _, l := range sr.Labels {
			if l == nil {
				continue
			}
			if l.Name == profile.LabelMetricName {
				name = l.Value
				continue
			}
			if convert.AllowedLabel(l.Name) {
				ls[l.Name] = l.Value
			}
		}
		if ls[profile.LabelServiceName] == "" {
			ls[profile.LabelServiceName] = "unknown_service"
		}
		for j, smp := range sr.Samples {
			if smp == nil || len(smp.RawProfile) == 0 {
				continue
			}
			prof, err := chargeFrom(ctx).parsePprof(smp.RawProfile, s.h.samplesLimit(ctx), func() string { return labelString(ls) })
			if err != nil {
				return nil, s.fail(fmt.Errorf("series %d sample %d: %w", i, j, err))
			}
			b, err := convert.FromPprof(prof, convert.Input{Labels: ls, Name: name})
			if err != nil {
				return nil, s.fail(fmt.Errorf("series %d sample %d: bad pprof: %w", i, j, err))
			}
			if err := s.h.append(ctx, b); err != nil {
				return nil, s.fail(err)
			}
		}
	}
	s.h.requests.WithLabelValues("push", "pprof", "200").Inc()
	return connect.NewResponse(&pushv1.PushResponse{}), nil
}

// fail maps an ingest error to a connect code (connect answers 429 for
// ResourceExhausted) and counts it.
func (s *pushService) fail(err error) error {
	code := connect.CodeInvalidArgument
	status := http.StatusBadRequest
	var he *httpError
	if errors.As(err, &he) {
		status = he.code
		switch he.code {
		case http.StatusTooManyRequests:
			code = connect.CodeResourceExhausted
		case http.StatusRequestEntityTooLarge:
			// Not ResourceExhausted: connect answers it 429, which clients
			// retry forever. Pyroscope refuses an oversized profile as
			// invalid (its distributor's profile size limit).
			code = connect.CodeInvalidArgument
		case http.StatusInternalServerError:
			code = connect.CodeInternal
		case http.StatusServiceUnavailable:
			code = connect.CodeUnavailable
		}
	}
	if errors.Is(err, convert.ErrTooLarge) {
		status = http.StatusRequestEntityTooLarge
	}
	s.h.requests.WithLabelValues("push", "pprof", fmt.Sprint(status)).Inc()
	ce := connect.NewError(code, err)
	if code == connect.CodeResourceExhausted || code == connect.CodeUnavailable {
		ce.Meta().Set("Retry-After", retryAfterSeconds)
	}
	return ce
}
