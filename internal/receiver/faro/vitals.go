package faro

import (
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// webVitalsType is the measurement type the Faro SDK gives Web Vitals.
const webVitalsType = "web-vitals"

// vitalsPrefix names the gauges Web Vitals become: faro_web_vitals_lcp,
// faro_web_vitals_cls, ... in the unit the SDK reports (milliseconds; CLS
// has none).
const vitalsPrefix = "faro_web_vitals_"

// vitalClock gives each series strictly increasing millisecond timestamps:
// two browsers reporting the same vital within a millisecond would otherwise
// be one sample twice, which the TSDB refuses as a duplicate.
type vitalClock struct {
	mu   sync.Mutex
	last map[string]int64
}

func (c *vitalClock) stamp(series string, now int64) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last == nil {
		c.last = map[string]int64{}
	}
	if len(c.last) > 10000 {
		for k, t := range c.last {
			if t < now-time.Minute.Milliseconds() {
				delete(c.last, k)
			}
		}
	}
	t := max(now, c.last[series]+1)
	c.last[series] = t
	return t
}

// vitals turns the payload's Web Vitals into gauges labelled with the app
// (service.name, so job), its environment and the browser; nil when there
// are none.
func (h *Handler) vitals(p *payload, now time.Time) (pmetric.Metrics, bool) {
	md := pmetric.NewMetrics()
	rm := md.ResourceMetrics().AppendEmpty()
	app := p.Meta.App.Name
	if app == "" {
		app = "unknown_service"
	}
	rm.Resource().Attributes().PutStr("service.name", app)
	if p.Meta.App.Namespace != "" {
		rm.Resource().Attributes().PutStr("service.namespace", p.Meta.App.Namespace)
	}
	sm := rm.ScopeMetrics().AppendEmpty()
	sm.Scope().SetName("vispyr/faro")
	n := 0
	for _, m := range p.Measurements {
		if m.Type != webVitalsType {
			continue
		}
		for name, v := range m.Values {
			metric := sm.Metrics().AppendEmpty()
			metric.SetName(vitalsPrefix + strings.ToLower(name))
			dp := metric.SetEmptyGauge().DataPoints().AppendEmpty()
			dp.SetDoubleValue(v)
			attrs := dp.Attributes()
			attrs.PutStr("app_name", app)
			for k, v := range map[string]string{"app_environment": p.Meta.App.Environment, "browser_name": p.Meta.Browser.Name} {
				if v != "" {
					attrs.PutStr(k, v)
				}
			}
			series := metric.Name() + "\xff" + app + "\xff" + p.Meta.App.Environment + "\xff" + p.Meta.Browser.Name
			ms := h.clock.stamp(series, now.UnixMilli())
			dp.SetTimestamp(pcommon.NewTimestampFromTime(time.UnixMilli(ms)))
			n++
		}
	}
	return md, n > 0
}
