package forward

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// codec turns queue records into shardable units and batches of units into
// request bodies, for one signal.
type codec[U any] interface {
	// split decodes a record body, emitting each unit with its shard key,
	// item count and newest timestamp (ms; 0 when the signal has none).
	split(body []byte, emit func(key uint64, u U, items int, ts int64)) error
	// encode builds one request body from a batch.
	encode(us []U) ([]byte, error)
}

type unit[U any] struct {
	u      U
	pos    uint64
	items  int
	ts     int64
	tenant string
}

// pipe reads one destination's queue and delivers it: the reader splits
// records into units, shards batch and send them, the tracker moves the
// queue's cursor past what is delivered (or dropped for good).
type pipe[U any] struct {
	signal string
	dest   *Destination
	q      Queue
	codec  codec[U]
	send   sender
	logger *slog.Logger

	tr *tracker
	// shards take a record's units for them in one chunk, so a record of
	// thousands of series costs a channel send per shard, not per series.
	shards []chan []unit[U]
	health health

	items, failed, retried, bytes prometheus.Counter
	dropped                       *prometheus.CounterVec
	duration                      prometheus.Observer
	highestSent                   prometheus.Gauge

	loggedMu sync.Mutex
	logged   map[string]bool // drop reasons already logged
}

func newPipe[U any](signal string, d *Destination, q Queue, c codec[U], send sender, m *selfMetrics, logger *slog.Logger) *pipe[U] {
	l := prometheus.Labels{"signal": signal, "destination": d.Name}
	p := &pipe[U]{
		signal: signal, dest: d, q: q, codec: c, send: send,
		logger: logger.With("signal", signal, "destination", d.Name),
		tr:     newTracker(), logged: map[string]bool{},
		items: m.items.With(l), failed: m.failed.With(l), retried: m.retried.With(l), bytes: m.bytes.With(l),
		dropped: m.dropped.MustCurryWith(l), duration: m.duration.With(l), highestSent: m.highestSent.With(l),
	}
	m.shards.With(l).Set(float64(d.Queue.Shards))
	p.shards = make([]chan []unit[U], d.Queue.Shards)
	for i := range p.shards {
		// A few records ahead per shard: a backlog stays on disk.
		p.shards[i] = make(chan []unit[U], shardChunks)
	}
	m.queues.add(p.status)
	return p
}

// run delivers until ctx is done. What was read but not delivered stays in
// the queue past the cursor and is sent again after a restart.
func (p *pipe[U]) run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, ch := range p.shards {
		wg.Go(func() { p.shard(ctx, ch) })
	}
	wg.Go(func() { p.commitLoop(ctx) })
	err := p.read(ctx)
	wg.Wait()
	p.commit()
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// shardChunks is how many records' chunks a shard's channel holds.
const shardChunks = 4

func (p *pipe[U]) read(ctx context.Context) error {
	n := uint64(len(p.shards))
	chunks := make([][]unit[U], n)
	for {
		rec, pos, err := p.q.Next(ctx)
		if err != nil {
			return err
		}
		p.tr.open(pos, 1) // held open until split is done
		tenant, body, err := decodeRecord(rec)
		units := 0
		if err == nil {
			err = p.codec.split(body, func(key uint64, u U, items int, ts int64) {
				chunks[key%n] = append(chunks[key%n], unit[U]{u: u, pos: pos, items: items, ts: ts, tenant: tenant})
				units++
			})
		}
		if err != nil {
			// A record that does not decode will never send: count and skip it.
			p.drop("corrupt_record", 1, err)
			clear(chunks)
		} else {
			p.tr.add(pos, units)
			for i, c := range chunks {
				if len(c) == 0 {
					continue
				}
				select {
				case p.shards[i] <- c:
				case <-ctx.Done():
				}
				// The shard owns it now; the next record's chunk likely
				// holds as many units.
				chunks[i] = make([]unit[U], 0, len(c))
			}
		}
		p.tr.finish(pos, 1)
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
}

func (p *pipe[U]) shard(ctx context.Context, ch chan []unit[U]) {
	var (
		batch    []unit[U]
		us       []U
		items    int
		deadline <-chan time.Time
	)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		us = us[:0]
		var ts int64
		for _, b := range batch {
			us = append(us, b.u)
			ts = max(ts, b.ts)
		}
		if p.deliver(ctx, batch[0].tenant, us, items) {
			for _, b := range batch {
				p.tr.finish(b.pos, 1)
			}
			if ts > 0 {
				p.highestSent.Set(max(float64(ts)/1000, 0))
			}
		}
		clear(batch)
		batch, items, deadline = batch[:0], 0, nil
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-deadline:
			flush()
		case chunk := <-ch:
			for _, u := range chunk {
				if len(batch) > 0 && batch[0].tenant != u.tenant {
					flush()
				}
				if len(batch) == 0 {
					deadline = time.After(p.dest.Queue.BatchDeadline)
				}
				batch = append(batch, u)
				items += u.items
				if items >= p.dest.Queue.MaxBatchItems {
					flush()
				}
			}
		}
	}
}

// deliver sends one batch until it is delivered or dropped for good, and
// reports false only when ctx ended first (the batch stays in the queue).
func (p *pipe[U]) deliver(ctx context.Context, tenant string, us []U, items int) bool {
	body, err := p.codec.encode(us)
	if err != nil {
		p.drop("encode", items, err)
		return true
	}
	tenant = p.dest.tenantFor(tenant)
	b := backoff{min: p.dest.Queue.MinBackoff, max: p.dest.Queue.MaxBackoff}
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			p.retried.Add(float64(items))
		}
		start := time.Now()
		err := p.send(ctx, tenant, body)
		p.duration.Observe(time.Since(start).Seconds())
		p.bytes.Add(float64(len(body)))
		if err == nil {
			p.items.Add(float64(items))
			p.health.ok()
			return true
		}
		if ctx.Err() != nil {
			return false
		}
		p.failed.Add(float64(items))
		se := asSendError(err)
		p.health.fail(err)
		if !se.retryable {
			p.drop(se.reason, items, err)
			return true
		}
		wait := b.next(se.retryAfter)
		p.logger.Debug("send failed; retrying", "err", err, "in", wait)
		select {
		case <-ctx.Done():
			return false
		case <-time.After(wait):
		}
	}
}

// drop counts items lost for good and logs the first drop of each reason
// with the destination's own message.
func (p *pipe[U]) drop(reason string, items int, err error) {
	p.dropped.WithLabelValues(reason).Add(float64(items))
	p.loggedMu.Lock()
	first := !p.logged[reason]
	p.logged[reason] = true
	p.loggedMu.Unlock()
	if first {
		p.logger.Error("dropping data the destination refused for good (logged once per reason; see vispyr_forward_items_dropped_total)",
			"reason", reason, "items", items, "err", err)
	}
}

// commitLoop moves the queue's cursor a few times a second, not per batch.
func (p *pipe[U]) commitLoop(ctx context.Context) {
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			p.commit()
		}
	}
}

func (p *pipe[U]) commit() {
	if pos, ok := p.tr.committable(); ok {
		if err := p.q.Commit(pos); err != nil {
			p.logger.Error("commit forward queue cursor", "err", err)
		}
	}
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// health is what the status page shows of a destination.
type health struct {
	lastOK, lastFail atomic.Int64 // unix ns
	lastErr          atomic.Value // string
}

func (h *health) ok() { h.lastOK.Store(time.Now().UnixNano()) }

func (h *health) fail(err error) {
	h.lastFail.Store(time.Now().UnixNano())
	h.lastErr.Store(err.Error())
}

// DestinationStatus is one destination's health and backlog.
type DestinationStatus struct {
	Signal, Name, URL string
	Healthy           bool
	LastError         string
	LastSuccess       time.Time
	QueueBytes        int64
	QueueRecords      int64
	Full              bool
}

func (p *pipe[U]) status() DestinationStatus {
	b, r := p.q.Size()
	s := DestinationStatus{Signal: p.signal, Name: p.dest.Name, URL: p.dest.URL, QueueBytes: b, QueueRecords: r, Full: p.q.Full()}
	ok, fail := p.health.lastOK.Load(), p.health.lastFail.Load()
	if ok > 0 {
		s.LastSuccess = time.Unix(0, ok)
	}
	if e, _ := p.health.lastErr.Load().(string); fail > ok {
		s.LastError = e
	}
	s.Healthy = fail <= ok && !s.Full
	return s
}
