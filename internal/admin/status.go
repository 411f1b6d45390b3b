package admin

import (
	"html/template"
	"net/http"
	"time"

	"github.com/vispyr/vispyr/internal/version"
)

// Status is what the admin status page shows about this process.
type Status struct {
	Started time.Time
	DataDir string
	// Listeners are name → address, in display order.
	Listeners [][2]string
	// Destinations, when set, lists the forward destinations (gateway, or
	// serve with forward:).
	Destinations func() []Destination
	// MetricsReplayBytes, when set, says how many bytes of metrics WAL still
	// replay in the background (their samples are missing from queries).
	MetricsReplayBytes func() int64
}

// Destination is one forward destination's health and backlog.
type Destination struct {
	Signal, Name, URL, Health string
	QueueBytes, QueueRecords  int64
	LastSuccess               time.Time
}

var statusPage = template.Must(template.New("status").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>Vispyr status</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;color:#222}td,th{padding:.2em 1em;text-align:left}
th{color:#666;font-weight:normal}h1{font-size:1.4em}</style></head>
<body><h1>Vispyr {{.Version}}</h1>
<table>
<tr><th>ready</th><td>{{.Ready}}</td></tr>
<tr><th>up since</th><td>{{.Started.UTC.Format "2006-01-02 15:04:05 MST"}} ({{.Uptime}})</td></tr>
<tr><th>data dir</th><td>{{.DataDir}}</td></tr>
{{with .Replay}}<tr><th>metrics WAL replay</th><td>{{.}} MB still replaying in the background: recent metrics may be incomplete, rules wait</td></tr>{{end}}
<tr><th>revision</th><td>{{.Revision}} ({{.GoVersion}})</td></tr>
</table>
<h2>Listeners</h2><table>{{range .Listeners}}<tr><th>{{index . 0}}</th><td>{{index . 1}}</td></tr>{{end}}</table>
{{with .Destinations}}<h2>Forward destinations</h2><table>
<tr><th>signal</th><th>name</th><th>url</th><th>health</th><th>backlog</th><th>last delivered</th></tr>
{{range .}}<tr><td>{{.Signal}}</td><td>{{.Name}}</td><td>{{.URL}}</td><td>{{.Health}}</td><td>{{.QueueRecords}} requests, {{.QueueBytes}} bytes</td><td>{{if .LastSuccess.IsZero}}never{{else}}{{.LastSuccess.UTC.Format "15:04:05"}}{{end}}</td></tr>{{end}}
</table>{{end}}
<p><a href="/metrics">/metrics</a> · <a href="/-/ready">/-/ready</a> · <a href="/-/healthy">/-/healthy</a> · <a href="/debug/pprof/">/debug/pprof</a></p>
</body></html>`))

func statusHandler(s Status, r *Readiness) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path != "/" {
			http.NotFound(w, req)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_ = statusPage.Execute(w, map[string]any{
			"Version": version.Version, "Revision": version.Revision, "GoVersion": version.GoVersion,
			"Ready": r.Ready(), "Started": s.Started, "Uptime": time.Since(s.Started).Round(time.Second),
			"DataDir": s.DataDir, "Listeners": s.Listeners, "Destinations": destinations(s),
			"Replay": replayMB(s),
		})
	}
}

// replayMB is the metrics WAL still replaying, in MB rounded up; 0 when none.
func replayMB(s Status) int64 {
	if s.MetricsReplayBytes == nil {
		return 0
	}
	return (s.MetricsReplayBytes() + 1<<20 - 1) >> 20
}

func destinations(s Status) []Destination {
	if s.Destinations == nil {
		return nil
	}
	return s.Destinations()
}
