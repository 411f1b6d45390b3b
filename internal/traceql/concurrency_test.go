package traceql

import (
	"reflect"
	"sync"
	"testing"
)

// A compiled Query is shared by the store's parallel block scanners.
func TestEvalTraceConcurrent(t *testing.T) {
	q, err := Parse(`{ resource.service.name = "db" } | by(span.db.system) | count() > 0`)
	if err != nil {
		t.Fatal(err)
	}
	traces := fixtureTraces()
	want := len(q.EvalTrace(traces["A"]))
	s, _ := Parse(`{ kind = client } &< { kind = server }`)
	wantS := evalAll(t, s.String())
	var wg sync.WaitGroup
	errs := make(chan string, 100)
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if got := len(q.EvalTrace(traces["A"])); got != want {
					errs <- "grouped query changed result under concurrency"
					return
				}
				got := result{}
				for name, td := range traces {
					for _, ss := range s.EvalTrace(td) {
						var names []string
						for _, sp := range ss.Spans {
							names = append(names, sp.Span.Name())
						}
						got[name] = append(got[name], names)
					}
				}
				if !reflect.DeepEqual(got, wantS) {
					errs <- "structural query changed result under concurrency"
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Fatal(e)
	}
}
