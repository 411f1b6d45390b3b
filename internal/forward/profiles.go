package forward

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/google/uuid"
	googlev1 "github.com/grafana/pyroscope/api/gen/proto/go/google/v1"
	pushv1 "github.com/grafana/pyroscope/api/gen/proto/go/push/v1"
	typesv1 "github.com/grafana/pyroscope/api/gen/proto/go/types/v1"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/profile"
)

// Profiles forwards profiles by the Pyroscope push API to every profiles
// destination: ConsumeProfiles returns once they are fsync'd in every
// destination's queue.
type Profiles struct {
	queues []Queue
}

var _ pipeline.Profiles = (*Profiles)(nil)

// ConsumeProfiles queues b as one push request: one series with one pprof per
// profile, so concatenated records batch into one request without decoding.
func (p *Profiles) ConsumeProfiles(ctx context.Context, b *profile.Batch) error {
	if p.Full() {
		return overloaded(ErrQueueFull)
	}
	rec, err := p.record(b)
	if err != nil || rec == nil {
		return err
	}
	return appendAll(p.queues, tenantOf(ctx), rec)
}

// record is the queue record body of b, nil when b holds no profile.
func (p *Profiles) record(b *profile.Batch) ([]byte, error) {
	if len(b.Profiles) == 0 {
		return nil, nil
	}
	req, err := pushRequest(b)
	if err != nil {
		return nil, err
	}
	raw, err := req.MarshalVT()
	if err != nil {
		return nil, fmt.Errorf("marshal forwarded profiles: %w", err)
	}
	return appendCountedBody(make([]byte, 0, len(raw)+binary.MaxVarintLen64), len(b.Profiles), raw), nil
}

// pushPath is the connect route of Pyroscope's PusherService.Push.
const pushPath = "/push.v1.PusherService/Push"

// newPushSender posts push requests to a Pyroscope base URL with the connect
// protocol (unary, binary protobuf): its errors come back as HTTP statuses
// (429 resource_exhausted, 503 unavailable, 400 invalid_argument), which
// httpError classifies like remote write's.
func newPushSender(d *Destination) (sender, error) {
	s, err := newHTTPSender(d, strings.TrimSuffix(d.URL, "/")+pushPath, map[string]string{
		"Content-Type":             "application/proto",
		"Connect-Protocol-Version": "1",
	})
	if err != nil {
		return nil, err
	}
	return s.send, nil
}

// pushRequest turns a decoded batch back into what a Pyroscope client pushes:
// per profile, its series labels (without __profile_type__, which the server
// derives from __name__ and the pprof's sample type) and a pprof holding one
// sample type, the batch's stacks and each sample's span_id and trace_id.
func pushRequest(b *profile.Batch) (*pushv1.PushRequest, error) {
	req := &pushv1.PushRequest{Series: make([]*pushv1.RawProfileSeries, 0, len(b.Profiles))}
	for i := range b.Profiles {
		p := &b.Profiles[i]
		typ, err := profile.ParseProfileType(p.Labels.Get(profile.LabelProfileType))
		if err != nil {
			return nil, pipeline.Invalid(fmt.Errorf("profile %d: %w", i, err))
		}
		raw, err := toPprof(b, p, typ).MarshalVT()
		if err != nil {
			return nil, fmt.Errorf("marshal pprof: %w", err)
		}
		var ls []*typesv1.LabelPair
		p.Labels.Range(func(l labels.Label) {
			if l.Name != profile.LabelProfileType {
				ls = append(ls, &typesv1.LabelPair{Name: l.Name, Value: l.Value})
			}
		})
		req.Series = append(req.Series, &pushv1.RawProfileSeries{
			Labels: ls,
			// A UUID of the content: a queue replayed after a crash sends the
			// same ID again, which a destination may use to spot the copy.
			Samples: []*pushv1.RawSample{{RawProfile: raw, ID: uuid.NewSHA1(uuid.NameSpaceOID, raw).String()}},
		})
	}
	return req, nil
}

// toPprof builds one profile's pprof, its samples' span and trace IDs as labels.
func toPprof(b *profile.Batch, p *profile.Profile, typ profile.ProfileType) *googlev1.Profile {
	pb := profile.NewPprofBuilder(typ, p.TimeNanos)
	stack := []string{}
	for _, s := range p.Samples {
		stack = stack[:0]
		for _, name := range b.Stacks[s.Stack] {
			stack = append(stack, b.Names[name])
		}
		smp := pb.Sample(stack, s.Value)
		if s.SpanID != 0 {
			smp.Label = append(smp.Label, &googlev1.Label{Key: pb.Str("span_id"), Str: pb.Str(fmt.Sprintf("%016x", s.SpanID))})
		}
		if s.TraceID != "" {
			smp.Label = append(smp.Label, &googlev1.Label{Key: pb.Str("trace_id"), Str: pb.Str(s.TraceID)})
		}
	}
	return pb.P
}
