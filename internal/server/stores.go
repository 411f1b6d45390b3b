package server

import (
	"errors"
	"log/slog"
	"path/filepath"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vispyr/vispyr/internal/config"
	"github.com/vispyr/vispyr/internal/logs"
	"github.com/vispyr/vispyr/internal/metrics"
	"github.com/vispyr/vispyr/internal/profiles"
	"github.com/vispyr/vispyr/internal/traces"
)

// stores are the embedded stores `vispyr serve` opens before it listens.
type stores struct {
	metrics  *metrics.Storage
	traces   *traces.Store
	profiles *profiles.Store
	logs     *logs.Store
}

// openStores opens the four stores at once. Each replays its own WAL, and
// those replays are independent: opened one after the other, the trace,
// profile and log WALs waited for the metrics TSDB's (the longest) to end,
// while its single-goroutine phases (reading the head snapshot and the
// mmapped chunks) leave a core to them. If any fails, those that opened are
// closed.
func openStores(cfg config.Config, logger *slog.Logger, reg prometheus.Registerer) (*stores, error) {
	var (
		st   stores
		wg   sync.WaitGroup
		errs [4]error
	)
	open := func(i int, fn func() error) {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = fn() }()
	}
	open(0, func() (err error) {
		st.metrics, err = metrics.Open(cfg.Metrics, cfg.Limits, cfg.DataDir, logger.With("component", "metrics"), reg)
		return err
	})
	open(1, func() (err error) {
		st.traces, err = traces.Open(cfg.Traces, cfg.DataDir, logger.With("component", "traces"), reg)
		return err
	})
	open(2, func() (err error) {
		st.profiles, err = profiles.Open(cfg.Profiles, cfg.DataDir, logger.With("component", "profiles"), reg)
		return err
	})
	open(3, func() (err error) {
		st.logs, err = logs.Open(filepath.Join(cfg.DataDir, "logs"), cfg.Logs, logger.With("component", "logs"), logs.WithRegisterer(reg))
		return err
	})
	wg.Wait()
	if err := errors.Join(errs[:]...); err != nil {
		st.close(logger)
		return nil, err
	}
	st.traces.SetTenantSpansPerTrace(func(tenant string) int { return cfg.Limits.ForTenant(tenant).MaxSpansPerTrace })
	return &st, nil
}

// close closes the stores that are open, the metrics store last.
func (st *stores) close(logger *slog.Logger) {
	if st.logs != nil {
		if err := st.logs.Close(); err != nil {
			logger.Error("close log store", "err", err)
		}
	}
	if st.profiles != nil {
		if err := st.profiles.Close(); err != nil {
			logger.Error("close profile store", "err", err)
		}
	}
	if st.traces != nil {
		if err := st.traces.Close(); err != nil {
			logger.Error("close trace store", "err", err)
		}
	}
	if st.metrics != nil {
		if err := st.metrics.Close(); err != nil {
			logger.Error("close metrics store", "err", err)
		}
	}
}
