package lokiapi

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/prometheus/prometheus/model/labels"

	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/logs/logql"
)

// maxDelayFor is Loki's bound on the tail's delay_for, in seconds.
const maxDelayFor = 5

// tailPing keeps idle tails alive through proxies and notices dead peers.
const tailPing = 30 * time.Second

type tailResponse struct {
	Streams        []streamJSON   `json:"streams"`
	DroppedEntries []droppedEntry `json:"dropped_entries,omitempty"`
}

type droppedEntry struct {
	Labels    map[string]string `json:"labels"`
	Timestamp string            `json:"timestamp"`
}

type tailParams struct {
	query      string
	expr       *logql.LogExpr
	limit      int
	delay      time.Duration
	start      time.Time
	categorize bool
	legacy     bool // /api/prom/tail: answers in the legacy shape
}

func (a *API) parseTail(r *http.Request) (tailParams, error) {
	var p tailParams
	if err := form(r); err != nil {
		return p, err
	}
	var err error
	if p.query, err = withRegexp(r); err != nil {
		return p, err
	}
	if p.expr, err = logql.ParseLogSelector(p.query); err != nil {
		return p, err
	}
	if p.limit, err = a.parseLimit(r); err != nil {
		return p, err
	}
	if v := r.Form.Get("delay_for"); v != "" {
		d, err := strconv.Atoi(v)
		if err != nil || d < 0 {
			return p, errBadRequest("invalid delay_for: %q", v)
		}
		if d > maxDelayFor {
			return p, errBadRequest("delay_for can't be greater than %d", maxDelayFor)
		}
		p.delay = time.Duration(d) * time.Second
	}
	now := time.Now()
	if p.start, err = parseTime("start", r.Form.Get("start"), now.Add(-defaultQuerySince)); err != nil {
		return p, err
	}
	p.legacy = strings.HasPrefix(r.URL.Path, "/api/prom/")
	p.categorize = !p.legacy && hasFlag(r.Header.Get(encodingFlagsHeader), "categorize-labels")
	return p, nil
}

// takeTail counts an open tail against the tenant's limit.
func (a *API) takeTail(tenant string) (release func(), err error) {
	a.tailsMu.Lock()
	defer a.tailsMu.Unlock()
	if n := a.tails[tenant]; n >= a.lim.MaxTails {
		return nil, errBadRequest("max concurrent tail requests limit exceeded, count > limit (%d > %d)", n+1, a.lim.MaxTails)
	}
	a.tails[tenant]++
	return func() {
		a.tailsMu.Lock()
		a.tails[tenant]--
		a.tailsMu.Unlock()
	}, nil
}

// tail serves /loki/api/v1/tail over a websocket: the newest lines since
// start first (up to limit), then every matching line as it is pushed.
func (a *API) tail(w http.ResponseWriter, r *http.Request) {
	p, err := a.parseTail(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	pl, err := logql.NewLinePipeline(p.expr.Stages)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	ten := tenant(r)
	release, err := a.takeTail(ten)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	defer release()
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	// Lines dropped for a slow reader are reported as the tail would have
	// shown them; the store runs this second pipeline on its own goroutines.
	dropPL, err := logql.NewLinePipeline(p.expr.Stages)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	keep := func(ls labels.Labels, e logs.Entry) (labels.Labels, bool) {
		row, ok := dropPL.Process(ls, e)
		return row.All(), ok
	}
	// Subscribe before reading history, so no line falls in between.
	live, dropped, err := a.q.Tail(ctx, ten, p.expr.Matchers, keep)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferSize: 16 << 10}
	conn, err := up.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader has answered
	}
	defer conn.Close()
	// The server's write timeout was set for ordinary requests.
	_ = conn.NetConn().SetDeadline(time.Time{})
	go func() { // a client's close or a dead connection ends the tail
		defer cancel()
		for {
			if _, _, err := conn.NextReader(); err != nil {
				return
			}
		}
	}()
	t := tailer{conn: conn, p: p, pl: pl, dropped: dropped}
	if err := t.history(ctx, a, ten); err != nil {
		a.logger.Debug("tail history", "err", err)
		_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseInternalServerErr, err.Error()), time.Now().Add(time.Second))
		return
	}
	if err := t.follow(ctx, live); err != nil {
		a.logger.Debug("tail ended", "err", err)
	}
}

type tailer struct {
	conn      *websocket.Conn
	p         tailParams
	pl        *logql.LinePipeline
	dropped   func() []logs.DroppedEntry
	sentUntil int64 // newest timestamp sent from history
	sent      map[string]bool
}

// history sends the newest limit lines from start to now, oldest first.
func (t *tailer) history(ctx context.Context, a *API, ten string) error {
	now := time.Now()
	if !t.p.start.Before(now) {
		return nil
	}
	res, err := a.engine.Exec(ctx, logql.Params{
		Tenant: ten, Query: t.p.query, Start: t.p.start, End: now.Add(time.Nanosecond),
		Step: time.Second, Limit: t.p.limit, Direction: logs.Backward,
	})
	if err != nil {
		return err
	}
	rows := res.Entries
	slices.Reverse(rows)
	t.sent = make(map[string]bool, len(rows))
	for _, row := range rows {
		t.sent[rowKey(row)] = true
		t.sentUntil = max(t.sentUntil, row.Timestamp)
	}
	if len(rows) == 0 {
		return nil
	}
	return t.send(rows)
}

func rowKey(r logql.Row) string {
	return strconv.FormatInt(r.Timestamp, 10) + "\xff" + r.Stream.String() + "\xff" + r.Line
}

// follow sends pushed lines, batched over delay_for, until ctx ends.
func (t *tailer) follow(ctx context.Context, live <-chan logs.Stream) error {
	ping := time.NewTicker(tailPing)
	defer ping.Stop()
	var batch []logql.Row
	var flush <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-ping.C:
			if err := t.conn.WriteControl(websocket.PingMessage, nil, time.Now().Add(10*time.Second)); err != nil {
				return err
			}
		case s, ok := <-live:
			if !ok {
				return nil
			}
			batch = t.appendRows(batch, s)
			if t.p.delay == 0 {
				if err := t.sendBatch(&batch); err != nil {
					return err
				}
			} else if flush == nil && len(batch) > 0 {
				flush = time.After(t.p.delay)
			}
		case <-flush:
			flush = nil
			if err := t.sendBatch(&batch); err != nil {
				return err
			}
		}
	}
}

func (t *tailer) appendRows(batch []logql.Row, s logs.Stream) []logql.Row {
	for _, e := range s.Entries {
		row, ok := t.pl.Process(s.Labels, e)
		if !ok {
			continue
		}
		// A line pushed while history was read may be in both.
		if row.Timestamp <= t.sentUntil && t.sent[rowKey(row)] {
			continue
		}
		batch = append(batch, row)
	}
	return batch
}

func (t *tailer) sendBatch(batch *[]logql.Row) error {
	rows := *batch
	*batch = (*batch)[:0]
	slices.SortStableFunc(rows, func(a, b logql.Row) int {
		if a.Timestamp < b.Timestamp {
			return -1
		}
		if a.Timestamp > b.Timestamp {
			return 1
		}
		return 0
	})
	for len(rows) > 0 {
		n := min(len(rows), t.p.limit)
		if err := t.send(rows[:n]); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

// send writes one message, with the lines the store dropped since the last
// one because this tail fell behind, as Loki reports them: dropped_entries
// with each line's labels and timestamp.
func (t *tailer) send(rows []logql.Row) error {
	_ = t.conn.SetWriteDeadline(time.Now().Add(30 * time.Second))
	if t.p.legacy {
		return t.conn.WriteJSON(legacyTail(rows, t.dropped()))
	}
	msg := tailResponse{Streams: streamsJSON(rows, t.p.categorize)}
	for _, d := range t.dropped() {
		msg.DroppedEntries = append(msg.DroppedEntries, droppedEntry{Labels: d.Labels.Map(), Timestamp: strconv.FormatInt(d.Timestamp, 10)})
	}
	return t.conn.WriteJSON(msg)
}
