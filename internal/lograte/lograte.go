// Package lograte keeps a flood of identical log lines (one per refused sample
// or failed request, tens of thousands a second under a fault) from drowning
// the log and the disk: each message is written at most once per interval,
// and the next one written says how many were suppressed meanwhile.
package lograte

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// maxKeys bounds the messages remembered; past it the memory starts afresh.
// Messages are constant strings in practice, so this is a safety net.
const maxKeys = 1024

// New returns a handler passing each distinct message (per level) to next at
// most once per every; loggers derived from it with With share the limit.
func New(next slog.Handler, every time.Duration) slog.Handler {
	return &handler{next: next, s: &state{every: every, seen: map[key]*entry{}}}
}

type key struct {
	level slog.Level
	msg   string
}

type entry struct {
	last       time.Time
	suppressed int
}

type state struct {
	every time.Duration
	mu    sync.Mutex
	seen  map[key]*entry
}

// admit reports whether a record may be written now, and how many like it
// were suppressed since the last one written.
func (s *state) admit(k key, now time.Time) (ok bool, suppressed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.seen[k]
	if e == nil {
		if len(s.seen) >= maxKeys {
			clear(s.seen)
		}
		s.seen[k] = &entry{last: now}
		return true, 0
	}
	if now.Sub(e.last) < s.every {
		e.suppressed++
		return false, 0
	}
	n := e.suppressed
	e.last, e.suppressed = now, 0
	return true, n
}

type handler struct {
	next slog.Handler
	s    *state
}

func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	now := r.Time
	if now.IsZero() {
		now = time.Now()
	}
	ok, suppressed := h.s.admit(key{r.Level, r.Message}, now)
	if !ok {
		return nil
	}
	if suppressed > 0 {
		r = r.Clone()
		r.AddAttrs(slog.Int("suppressed", suppressed), slog.Duration("suppressed_within", h.s.every))
	}
	return h.next.Handle(ctx, r)
}

func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{next: h.next.WithAttrs(as), s: h.s}
}

func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{next: h.next.WithGroup(name), s: h.s}
}
