package resultscache

import (
	"container/list"
	"sync"

	"github.com/prometheus/prometheus/promql"

	"github.com/vispyr/vispyr/internal/metrics/rangeparts"
)

// extent is the cached result of one query over the steps from..to: never
// changed once stored (a new request stores a new extent), so readers share
// its slices without copying.
type extent struct {
	from, to      int64
	behind, ahead int64
	stepMs        int64
	dataMin       int64 // the store's oldest timestamp when the steps were computed
	series        promql.Matrix
	bytes         int64
	tenant        string
	key           string
}

func newExtent(m promql.Matrix, from, to int64, p plan) *extent {
	e := &extent{from: from, to: to, behind: p.behind, ahead: p.ahead, stepMs: p.stepMs, series: m, tenant: p.tenant, key: p.key}
	e.bytes = int64(len(p.key)) + 128
	for _, s := range m {
		e.bytes += int64(s.Metric.ByteSize()) + 64 + int64(len(s.Floats))*16
		for _, h := range s.Histograms {
			e.bytes += 24 + int64(h.H.Size())
		}
	}
	return e
}

// slice returns the steps from..to, sharing the extent's points.
func (e *extent) slice(from, to int64) promql.Matrix { return rangeparts.Slice(e.series, from, to) }

// afterDataMin drops the steps whose input reached below minT: data the
// store no longer holds (retention) and that the steps were computed with.
func (e *extent) afterDataMin(minT int64) *extent {
	first := minT + e.behind
	if minT <= e.dataMin || first <= e.from {
		return e
	}
	first = e.from + ceilDiv(first-e.from, e.stepMs)*e.stepMs
	if first > e.to {
		return nil
	}
	n := newExtent(e.slice(first, e.to), first, e.to, e.plan())
	n.dataMin = e.dataMin
	return n
}

// before drops the steps whose input may include a sample at ts or later.
func (e *extent) before(ts int64) *extent {
	last := ts - e.ahead - 1
	if last >= e.to {
		return e
	}
	if last < e.from {
		return nil
	}
	last = e.from + floorDiv(last-e.from, e.stepMs)*e.stepMs
	n := newExtent(e.slice(e.from, last), e.from, last, e.plan())
	n.dataMin = e.dataMin
	return n
}

func (e *extent) plan() plan {
	return plan{key: e.key, tenant: e.tenant, stepMs: e.stepMs, behind: e.behind, ahead: e.ahead}
}

// store holds extents by key, least recently used evicted first once their
// bytes exceed max.
type store struct {
	mu      sync.Mutex
	max     int64
	bytes   int64
	lru     *list.List // of *extent, most recent first
	byKey   map[string]*list.Element
	tenants map[string]*tenantState
	m       *cacheMetrics
}

// tenantState counts a tenant's invalidations, so a result computed while
// one happened is not stored.
type tenantState struct {
	gen  uint64
	keys map[string]struct{}
}

func newStore(max int64, m *cacheMetrics) *store {
	return &store{max: max, lru: list.New(), byKey: map[string]*list.Element{}, tenants: map[string]*tenantState{}, m: m}
}

func (s *store) tenant(id string) *tenantState {
	t := s.tenants[id]
	if t == nil {
		t = &tenantState{keys: map[string]struct{}{}}
		s.tenants[id] = t
	}
	return t
}

// generation is the tenant's invalidation count now.
func (s *store) generation(tenant string) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tenant(tenant).gen
}

func (s *store) get(key string) *extent {
	s.mu.Lock()
	defer s.mu.Unlock()
	el := s.byKey[key]
	if el == nil {
		return nil
	}
	s.lru.MoveToFront(el)
	return el.Value.(*extent)
}

// peek is get without marking the extent used.
func (s *store) peek(key string) *extent {
	s.mu.Lock()
	defer s.mu.Unlock()
	if el := s.byKey[key]; el != nil {
		return el.Value.(*extent)
	}
	return nil
}

// put stores e unless the tenant saw an invalidation since gen (the result
// may have read data that changed) or e alone exceeds the budget.
func (s *store) put(key, tenant string, gen uint64, e *extent) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant(tenant)
	if t.gen != gen || e.bytes > s.max {
		return
	}
	s.remove(key)
	s.byKey[key] = s.lru.PushFront(e)
	s.bytes += e.bytes
	t.keys[key] = struct{}{}
	for s.bytes > s.max {
		old := s.lru.Back().Value.(*extent)
		s.remove(old.key)
		s.m.evictions.Inc()
	}
	s.report()
}

func (s *store) remove(key string) {
	el := s.byKey[key]
	if el == nil {
		return
	}
	e := el.Value.(*extent)
	s.lru.Remove(el)
	delete(s.byKey, key)
	s.bytes -= e.bytes
	if t := s.tenants[e.tenant]; t != nil {
		delete(t.keys, key)
	}
}

func (s *store) report() {
	s.m.bytes.Set(float64(s.bytes))
	s.m.entries.Set(float64(len(s.byKey)))
}

// invalidate cuts every extent of tenant short of the steps that may read a
// sample at ts or later.
func (s *store) invalidate(tenant string, ts int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.tenant(tenant)
	t.gen++
	s.m.invalidations.Inc()
	for key := range t.keys {
		el := s.byKey[key]
		e := el.Value.(*extent)
		if ts-e.ahead > e.to {
			continue
		}
		s.remove(key)
		if n := e.before(ts); n != nil {
			s.byKey[key] = s.lru.PushBack(n)
			s.bytes += n.bytes
			t.keys[key] = struct{}{}
		}
	}
	s.report()
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }
