package profiles

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestConcurrentAppendQueryCut runs appends, queries and head cuts together (meant
// for -race) and checks the final total counts every acknowledged sample once.
func TestConcurrentAppendQueryCut(t *testing.T) {
	s := mustOpen(t, Config{}, t.TempDir())
	defer s.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	const writers, perWriter = 4, 40
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWriter {
				if err := s.Append(ctx, testBatch("api", time.Now(), map[string]int64{"main;a": 1, "main;b;c": 1}, uint64(w*1000+i))); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	var readers sync.WaitGroup
	readers.Add(2)
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := s.MergeTree(ctx, allTime("api"), &SampleFilter{SpanIDs: map[uint64]struct{}{5: {}}}); err != nil {
				t.Error(err)
			}
			s.LabelValues(allTime("api"), LabelServiceName)
			if _, err := s.SelectSeries(ctx, allTime("api"), int64(time.Minute), nil, AggregateSum); err != nil {
				t.Error(err)
			}
		}
	}()
	go func() {
		defer readers.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			if err := s.CutHead(); err != nil {
				t.Error(err)
			}
		}
	}()
	wg.Wait()
	close(stop)
	readers.Wait()
	if got := total(t, s, "api"); got != 2*writers*perWriter {
		t.Fatalf("total %d, want %d", got, 2*writers*perWriter)
	}
}
