package metrics

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/prometheus/tsdb"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/metrics/longterm"
	"github.com/vispyr/vispyr/internal/pipeline"
)

// Metrics are kept per tenant, as Mimir's ingesters keep them: one TSDB per
// tenant. The default tenant (no X-Scope-OrgID) keeps <data dir>/metrics, so
// existing data needs no migration; every other tenant has its own TSDB in
// <data dir>/metrics-tenants/<escaped tenant>, opened the first time the tenant
// writes (and at start-up when its directory exists).
const tenantsDir = "metrics-tenants"

// maxTenantIDLength is Mimir's (dskit's) limit on a tenant ID.
const maxTenantIDLength = 150

// ValidTenantID applies Mimir's rules to a tenant ID (dskit's tenant
// package): at most 150 characters from [a-zA-Z0-9!-_.*'()], not "." or "..".
func ValidTenantID(id string) error {
	if len(id) > maxTenantIDLength {
		return fmt.Errorf("tenant ID is too long: max %d characters", maxTenantIDLength)
	}
	if id == "." || id == ".." {
		return errors.New("tenant ID is '.' or '..'")
	}
	for _, c := range id {
		if !tenantIDChar(c) {
			return fmt.Errorf("tenant ID '%s' contains unsupported character '%c'", id, c)
		}
	}
	return nil
}

func tenantIDChar(c rune) bool {
	switch {
	case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		return true
	}
	return strings.ContainsRune("!-_.*'()", c)
}

// tenantDirName escapes a (valid) tenant ID into one path element that can be
// neither "." nor "..", nor collide with another tenant's: every byte but
// [A-Za-z0-9_-] becomes %XX.
func tenantDirName(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// tenantFromDirName reverses tenantDirName; ok is false for names it never makes.
func tenantFromDirName(name string) (id string, ok bool) {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		if name[i] != '%' {
			b.WriteByte(name[i])
			continue
		}
		if i+2 >= len(name) {
			return "", false
		}
		c, err := strconv.ParseUint(name[i+1:i+3], 16, 8)
		if err != nil {
			return "", false
		}
		b.WriteByte(byte(c))
		i += 2
	}
	id = b.String()
	return id, ValidTenantID(id) == nil && id != "" && tenantDirName(id) == name
}

// tenantDB is one tenant's TSDB; its ingest limits live beside it.
type tenantDB struct {
	id  string
	db  *tsdb.DB
	lt  *longterm.Store // nil unless metrics.longterm is on
	own *ownHead        // nil unless metrics.head is vispyr (ownhead.go)
	// tsdbGauges has the TSDB's gauges, its head's chunk count among them
	// (chunkcount.go).
	tsdbGauges *tsdbGauges
	// oooWindow is metrics.out_of_order_window in ms: the own head sends the
	// TSDB's head what it refuses as out of order.
	oooWindow int64
	limits    *tenantLimiter

	replayDirs []string     // WALs moved aside at open, oldest first (replay.go)
	replaying  atomic.Int64 // bytes of them still replaying
}

// lookup returns the tenant's TSDB, or nil when the tenant never wrote: a read
// never creates a TSDB.
func (s *Storage) lookup(id string) *tenantDB {
	if id == pipeline.DefaultTenant {
		return s.def
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tenants[id]
}

// tenant returns the tenant's TSDB, opening (and creating) it on first use.
func (s *Storage) tenant(id string) (*tenantDB, error) {
	if t := s.lookup(id); t != nil {
		return t, nil
	}
	if err := ValidTenantID(id); err != nil {
		return nil, pipeline.Invalid(err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.tenants[id]; t != nil {
		return t, nil
	}
	if s.closed {
		return nil, errors.New("metrics store is closed")
	}
	// The default tenant counts: it always has its TSDB.
	if max := s.limits.MaxTenants; max > 0 && len(s.tenants)+1 >= max {
		return nil, &pipeline.LimitError{Msg: fmt.Sprintf("too many tenants: tenant '%s' refused, the metrics store already keeps limits.max_tenants (%d) tenants. To adjust the limit, configure limits.max_tenants, or contact your service administrator.", id, max)}
	}
	t, err := s.openTenant(id)
	if err != nil {
		return nil, err
	}
	s.tenants[id] = t
	if len(t.replayDirs) > 0 { // a tenant dir that appeared since start-up
		s.startReplay(t, t.replayDirs)
	}
	return t, nil
}

// openTenant opens a non-default tenant's TSDB. Its own metrics are not
// registered: the default tenant's prometheus_tsdb_* series describe the
// store, and registering one set per tenant would collide.
func (s *Storage) openTenant(id string) (*tenantDB, error) {
	dir := filepath.Join(s.dataDir, tenantsDir, tenantDirName(id))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create tenant %q metrics dir: %w", id, err)
	}
	t, err := s.openTenantDB(id, dir, s.logger.With("component", "tsdb", "tenant", id), nil)
	if err != nil {
		return nil, fmt.Errorf("open tenant %q tsdb: %w", id, err)
	}
	s.logger.Info("opened tenant metrics store", "tenant", id, "dir", dir, "series", t.db.Head().NumSeries())
	return t, nil
}

// openTenantDB opens a tenant's TSDB in dir, first moving a WAL that is to
// replay in the background aside (replay.go).
func (s *Storage) openTenantDB(id, dir string, logger *slog.Logger, reg prometheus.Registerer) (*tenantDB, error) {
	dirs, err := stageReplay(dir, s.cfg.BackgroundReplayMinWALBytes, s.cfg.Head == config.HeadVispyr, logger)
	if err != nil {
		return nil, err
	}
	gauges := newTSDBGauges(reg)
	db, lt, err := s.openTSDB(dir, logger, gauges)
	if err != nil {
		return nil, err
	}
	own, err := s.openOwnHead(dir, logger, reg)
	if err != nil {
		return nil, errors.Join(err, db.Close())
	}
	if own != nil && db.Head().NumSeries() > 0 {
		// Its replayed WAL may hold floats the own head refused.
		own.floatsInDB.widen(db.Head().MinTime(), db.Head().MaxTime())
	}
	t := &tenantDB{id: id, db: db, lt: lt, own: own, tsdbGauges: gauges, oooWindow: s.cfg.OutOfOrderWindow.Milliseconds(),
		limits: s.newTenantLimiter(id), replayDirs: dirs}
	if len(dirs) > 0 {
		if err := ensureWALFloor(db); err != nil {
			return nil, errors.Join(err, t.close())
		}
	}
	return t, nil
}

// openExistingTenants opens every tenant TSDB found under the data dir, so
// their data is queryable and under retention from the start. Each replays
// its own WAL; up to GOMAXPROCS open at once, since a TSDB's replay has
// phases that use one core. On an error the tenants that did open stay in
// s.tenants, for Close.
func (s *Storage) openExistingTenants() error {
	entries, err := os.ReadDir(filepath.Join(s.dataDir, tenantsDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("list tenant metrics dirs: %w", err)
	}
	var (
		wg   sync.WaitGroup
		sem  = make(chan struct{}, runtime.GOMAXPROCS(0))
		errs = make([]error, len(entries))
	)
	for i, e := range entries {
		id, ok := tenantFromDirName(e.Name())
		if !e.IsDir() || !ok || id == pipeline.DefaultTenant {
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			t, err := s.openTenant(id)
			if err != nil {
				errs[i] = err
				return
			}
			s.mu.Lock()
			s.tenants[id] = t
			s.mu.Unlock()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// allTenants returns every open tenant, the default first.
func (s *Storage) allTenants() []*tenantDB {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := make([]*tenantDB, 0, len(s.tenants)+1)
	out = append(out, s.def)
	for _, t := range s.tenants {
		out = append(out, t)
	}
	return out
}
