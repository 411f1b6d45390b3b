package forward

import (
	"context"
	"strings"

	"github.com/klauspost/compress/snappy"
	"github.com/prometheus/prometheus/model/labels"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/vispyr/vispyr/internal/pipeline"
	"github.com/vispyr/vispyr/internal/pipeline/logpush"
)

// Logs forwards log lines by Loki's push API (protobuf, snappy) to every
// logs destination: ConsumeLogs returns once the lines are fsync'd in every
// destination's queue.
type Logs struct {
	queues []Queue
}

var _ pipeline.Logs = (*Logs)(nil)

// Full reports whether a logs destination's queue is full.
func (l *Logs) Full() bool { return anyFull(l.queues) }

// ConsumeLogs queues req as one Loki push request (unsnappied, so that
// records batch by concatenation).
func (l *Logs) ConsumeLogs(ctx context.Context, req *logpush.Request) error {
	if l.Full() {
		return overloaded(ErrQueueFull)
	}
	n := req.Lines()
	if n == 0 {
		return nil
	}
	return appendCounted(l.queues, tenantOf(ctx), n, lokiPush(req))
}

// lokiPush encodes req as Loki's logproto.PushRequest: streams (1) of
// labels (1, the selector string) and entries (2) of timestamp (1), line (2)
// and structured metadata (3).
func lokiPush(req *logpush.Request) []byte {
	var out, stream, entry, ts []byte
	for _, s := range req.Streams {
		stream = protowire.AppendTag(stream[:0], 1, protowire.BytesType)
		stream = protowire.AppendString(stream, s.Labels.String())
		for _, e := range s.Entries {
			ts = protowire.AppendTag(ts[:0], 1, protowire.VarintType)
			ts = protowire.AppendVarint(ts, uint64(e.Timestamp/1e9))
			ts = protowire.AppendTag(ts, 2, protowire.VarintType)
			ts = protowire.AppendVarint(ts, uint64(e.Timestamp%1e9))
			entry = protowire.AppendTag(entry[:0], 1, protowire.BytesType)
			entry = protowire.AppendBytes(entry, ts)
			entry = protowire.AppendTag(entry, 2, protowire.BytesType)
			entry = protowire.AppendString(entry, e.Line)
			e.Metadata.Range(func(l labels.Label) {
				var kv []byte
				kv = protowire.AppendTag(kv, 1, protowire.BytesType)
				kv = protowire.AppendString(kv, l.Name)
				kv = protowire.AppendTag(kv, 2, protowire.BytesType)
				kv = protowire.AppendString(kv, l.Value)
				entry = protowire.AppendTag(entry, 3, protowire.BytesType)
				entry = protowire.AppendBytes(entry, kv)
			})
			stream = protowire.AppendTag(stream, 2, protowire.BytesType)
			stream = protowire.AppendBytes(stream, entry)
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendBytes(out, stream)
	}
	return out
}

// newLokiSender posts snappy push requests to a Loki base URL
// (base/loki/api/v1/push).
func newLokiSender(d *Destination) (sender, error) {
	s, err := newHTTPSender(d, strings.TrimSuffix(d.URL, "/")+"/loki/api/v1/push",
		map[string]string{"Content-Type": "application/x-protobuf"})
	if err != nil {
		return nil, err
	}
	return func(ctx context.Context, tenant string, body []byte) error {
		return s.send(ctx, tenant, snappy.Encode(nil, body))
	}, nil
}
