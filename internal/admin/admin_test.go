package admin

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func body(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(w.Result().Body)
	return w.Code, string(b)
}

func TestReadinessFlipsEndpoints(t *testing.T) {
	r := &Readiness{}
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewCounter(prometheus.CounterOpts{Name: "vispyr_test_total", Help: "x"}))
	h := NewHandler(reg, r, Status{Started: time.Now(), DataDir: "/d", Listeners: [][2]string{{"tempo", ":3200"}}})
	health := NewHealthHandler(r, time.Now())

	if code, _ := body(t, h, "/-/ready"); code != http.StatusServiceUnavailable {
		t.Errorf("ready before start: %d", code)
	}
	if code, b := body(t, health, "/health/status"); code != http.StatusServiceUnavailable || !strings.Contains(b, "Server not available") {
		t.Errorf("health before start: %d %s", code, b)
	}
	r.SetReady(true)
	if code, _ := body(t, h, "/-/ready"); code != http.StatusOK {
		t.Errorf("ready after start: %d", code)
	}
	if code, b := body(t, health, "/health/status"); code != http.StatusOK || !strings.Contains(b, "Server available") {
		t.Errorf("health after start: %d %s", code, b)
	}
	if code, b := body(t, h, "/metrics"); code != http.StatusOK || !strings.Contains(b, "vispyr_test_total") {
		t.Errorf("/metrics: %d", code)
	}
	if code, b := body(t, h, "/"); code != http.StatusOK || !strings.Contains(b, ":3200") || !strings.Contains(b, "/d") {
		t.Errorf("status page: %d %s", code, b)
	}
	if code, _ := body(t, h, "/nope"); code != http.StatusNotFound {
		t.Errorf("unknown path: %d", code)
	}
}

// A condition (a nearly full disk) turns both endpoints to 503 naming why,
// and clearing it brings them back without a restart.
func TestConditionsSayWhyNotReady(t *testing.T) {
	r := &Readiness{}
	r.SetReady(true)
	h := NewHandler(prometheus.NewRegistry(), r, Status{Started: time.Now()})
	health := NewHealthHandler(r, time.Now())

	r.SetCondition("disk", "disk almost full: 10 bytes free")
	if code, b := body(t, h, "/-/ready"); code != http.StatusServiceUnavailable || !strings.Contains(b, "disk almost full: 10 bytes free") {
		t.Errorf("/-/ready with a full disk: %d %q", code, b)
	}
	if code, b := body(t, health, "/health/status"); code != http.StatusServiceUnavailable || !strings.Contains(b, `"reason":"disk almost full: 10 bytes free"`) {
		t.Errorf("/health/status with a full disk: %d %s", code, b)
	}
	r.SetCondition("disk", "")
	if code, _ := body(t, h, "/-/ready"); code != http.StatusOK {
		t.Errorf("/-/ready once space returned: %d", code)
	}
	if code, b := body(t, health, "/health/status"); code != http.StatusOK || strings.Contains(b, "reason") {
		t.Errorf("/health/status once space returned: %d %s", code, b)
	}
}

// The status page says how much metrics WAL still replays in the
// background, and nothing once none does.
func TestStatusShowsBackgroundReplay(t *testing.T) {
	left := int64(300 << 20)
	h := NewHandler(prometheus.NewRegistry(), &Readiness{}, Status{Started: time.Now(), MetricsReplayBytes: func() int64 { return left }})
	if _, b := body(t, h, "/"); !strings.Contains(b, "300 MB still replaying") {
		t.Errorf("status page during the replay: %s", b)
	}
	left = 0
	if _, b := body(t, h, "/"); strings.Contains(b, "replaying") {
		t.Errorf("status page after the replay: %s", b)
	}
}
