package generator

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/prometheus/storage"
	"github.com/prometheus/prometheus/tsdb"
	"go.opentelemetry.io/collector/pdata/ptrace"
)

// blockingAppendable holds every Commit until release is closed, like a
// storage stalled on a slow disk.
type blockingAppendable struct {
	storage.Appendable
	committing chan struct{}
	release    chan struct{}
}

func (b *blockingAppendable) Appender(ctx context.Context) storage.Appender {
	return &blockingAppender{Appender: b.Appendable.Appender(ctx), b: b}
}

type blockingAppender struct {
	storage.Appender
	b *blockingAppendable
}

func (a *blockingAppender) Commit() error {
	close(a.b.committing)
	<-a.b.release
	return a.Appender.Commit()
}

func TestConsumeDoesNotWaitForStorage(t *testing.T) {
	db, err := tsdb.Open(t.TempDir(), nil, nil, tsdb.DefaultOptions(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	app := &blockingAppendable{Appendable: db, committing: make(chan struct{}), release: make(chan struct{})}
	g := New(defaultConfig(), app, nil, nil)
	ctx := context.Background()
	if err := g.ConsumeTraces(ctx, build(checkout(0, time.Now())...)); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error)
	go func() { flushed <- g.Flush(ctx) }()
	<-app.committing

	// Storage is stuck in Commit; spans must still be taken at once.
	consumed := make(chan error)
	go func() { consumed <- g.ConsumeTraces(ctx, build(checkout(1, time.Now())...)) }()
	select {
	case err := <-consumed:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("ConsumeTraces waited for a stuck storage commit")
	}
	close(app.release)
	if err := <-flushed; err != nil {
		t.Fatal(err)
	}
}

func TestConcurrentConsumeAndFlushCountsEverySpan(t *testing.T) {
	e := newEnv(t, defaultConfig())
	const workers, perWorker = 4, 50
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < perWorker; i++ {
				td := ptrace.NewTraces()
				build(checkout(w*perWorker+i, t0)...).ResourceSpans().MoveAndAppendTo(td.ResourceSpans())
				_ = e.gen.ConsumeTraces(context.Background(), td)
			}
		}(w)
	}
	// Collections race with ingestion; the clock stays put so every flush
	// writes at the same timestamp and the last one holds the totals.
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	flushes := 0
	for running := true; running; flushes++ {
		select {
		case <-done:
			running = false
		default:
		}
		e.clock.Add(time.Millisecond)
		if err := e.gen.Flush(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	e.expectRows(`sum(traces_spanmetrics_calls_total)`, map[string]float64{`{}`: workers * perWorker * 6})
	e.expectRows(`sum(traces_service_graph_request_total{connection_type!="virtual_node"})`, map[string]float64{`{}`: workers * perWorker * 3})
	t.Logf("%d flushes raced with ingestion", flushes)
}
