// Package ui serves Vispyr's built-in web UI: the single-page app embedded at build time,
// and Vispyr's own query APIs mounted under path prefixes on the same origin, so that the
// browser talks to one port only.
package ui

import (
	"bytes"
	"compress/gzip"
	"embed"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"
)

// dist holds the built assets (web/build.sh copies them here) or, in a binary built without
// them, only placeholder.html.
//
//go:embed dist
var dist embed.FS

// Backends are the in-process handlers of Vispyr's own query APIs. A nil backend answers
// 503 so that the UI can tell the user which signal is not enabled.
type Backends struct {
	Prometheus http.Handler // Prometheus HTTP API: /api/v1/query_range, …
	Tempo      http.Handler // Tempo HTTP API: /api/search, /api/v2/traces/<id>, …
	Pyroscope  http.Handler // Pyroscope connect API: /querier.v1.QuerierService/<Method>
	Loki       http.Handler // Loki HTTP API, read paths only: /loki/api/v1/query_range, …, tail
}

// NewHandler returns the handler for the UI port: the API prefixes /prom/, /tempo/ and
// /pyroscope/, Loki's own /loki/ paths (the Logs page is /logs), the hashed assets, and index.html for every other path (client-side routes).
func NewHandler(b Backends, logger *slog.Logger) http.Handler {
	sub, err := fs.Sub(dist, "dist")
	if err != nil {
		panic(err) // the embed directive guarantees the directory exists
	}
	return newHandler(b, sub, logger)
}

func newHandler(b Backends, assets fs.FS, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mount(mux, "/prom/", "metrics", b.Prometheus)
	mount(mux, "/tempo/", "traces", b.Tempo)
	mount(mux, "/pyroscope/", "profiles", b.Pyroscope)
	// Loki's paths already start with /loki/, so they are served as they are.
	mux.Handle("/loki/", sameOrigin(orUnavailable(b.Loki, "logs")))
	// With auth on, the session gate in front answers /auth/ itself; reaching
	// here means auth is off, which the app learns from this 404.
	mux.HandleFunc("/auth/", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		_, _ = w.Write([]byte(`{"status":"error","error":"auth is not enabled in this Vispyr"}`))
	})
	mux.Handle("/", newSPA(assets, logger))
	return securityHeaders(mux)
}

// apiPrefixes are where the UI port serves data. Every other GET is the app's
// shell (the same static files for everyone, the login page among them), so
// with auth on it needs no credentials; a prefix missing here would be
// served to anyone, so mount refuses it.
var apiPrefixes = []string{"/prom/", "/tempo/", "/pyroscope/", "/loki/", "/api/"}

// IsShell reports whether a GET of the cleaned path p serves only the app's
// static shell, never data.
func IsShell(p string) bool {
	for _, pre := range apiPrefixes {
		if strings.HasPrefix(p+"/", pre) {
			return false
		}
	}
	return true
}

func mount(mux *http.ServeMux, prefix, signal string, h http.Handler) {
	if !slices.Contains(apiPrefixes, prefix) {
		panic("ui: mount " + prefix + ": add it to apiPrefixes so that auth guards it")
	}
	mux.Handle(prefix, http.StripPrefix(strings.TrimSuffix(prefix, "/"), sameOrigin(orUnavailable(h, signal))))
}

// orUnavailable is h, or for a nil h a 503 that names the signal not enabled.
func orUnavailable(h http.Handler, signal string) http.Handler {
	if h != nil {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusServiceUnavailable)
		_, _ = w.Write([]byte(`{"status":"error","errorType":"unavailable","error":"the ` + signal + ` backend is not enabled in this Vispyr","code":"unavailable","message":"the ` + signal + ` backend is not enabled in this Vispyr"}`))
	})
}

// sameOrigin drops the browser's Origin header: the UI and its APIs share one origin, so
// CORS handling in a backend has nothing to decide (and Prometheus's API handler
// dereferences a nil CORS pattern when it sees an Origin it was not configured for).
func sameOrigin(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			r = r.Clone(r.Context())
			r.Header.Del("Origin")
		}
		h.ServeHTTP(w, r)
	})
}

func securityHeaders(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("X-Frame-Options", "DENY")
		w.Header().Set("Referrer-Policy", "same-origin")
		h.ServeHTTP(w, r)
	})
}

// spa serves files from the embedded tree, compressing text assets once on first use.
type spa struct {
	assets  fs.FS
	index   []byte // index.html, or the placeholder when the UI was not built
	built   bool
	modTime time.Time

	mu   sync.Mutex
	gzip map[string][]byte
}

func newSPA(assets fs.FS, logger *slog.Logger) *spa {
	s := &spa{assets: assets, gzip: map[string][]byte{}, modTime: time.Now()}
	if idx, err := fs.ReadFile(assets, "index.html"); err == nil {
		s.index, s.built = idx, true
	} else {
		idx, err := fs.ReadFile(assets, "placeholder.html")
		if err != nil {
			idx = []byte("Vispyr UI not built: run make ui")
		}
		s.index = idx
		logger.Info("web UI not built into this binary; serving a placeholder page (run make ui)")
	}
	return s
}

func (s *spa) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	name := strings.TrimPrefix(path.Clean("/"+r.URL.Path), "/")
	if s.built && name != "" && name != "index.html" {
		if data, err := fs.ReadFile(s.assets, name); err == nil {
			// Vite puts content hashes in every asset name under assets/.
			if strings.HasPrefix(name, "assets/") {
				w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
			}
			s.serve(w, r, name, data)
			return
		}
		// A missing asset is a 404; only routes without a file extension get the app.
		if strings.HasPrefix(name, "assets/") || path.Ext(name) != "" {
			http.NotFound(w, r)
			return
		}
	}
	w.Header().Set("Cache-Control", "no-cache")
	s.serve(w, r, "index.html", s.index)
}

func (s *spa) serve(w http.ResponseWriter, r *http.Request, name string, data []byte) {
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = http.DetectContentType(data)
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Add("Vary", "Accept-Encoding")
	if compressible(ctype) && len(data) > 1024 && acceptsGzip(r) {
		w.Header().Set("Content-Encoding", "gzip")
		data = s.gzipped(name, data)
	}
	http.ServeContent(w, r, "", s.modTime, bytes.NewReader(data))
}

func (s *spa) gzipped(name string, data []byte) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if z, ok := s.gzip[name]; ok {
		return z
	}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	_, _ = zw.Write(data)
	_ = zw.Close()
	s.gzip[name] = buf.Bytes()
	return buf.Bytes()
}

func compressible(ctype string) bool {
	return strings.HasPrefix(ctype, "text/") || strings.Contains(ctype, "javascript") || strings.Contains(ctype, "json") || strings.Contains(ctype, "svg")
}

func acceptsGzip(r *http.Request) bool {
	for _, part := range strings.Split(r.Header.Get("Accept-Encoding"), ",") {
		if strings.TrimSpace(strings.SplitN(part, ";", 2)[0]) == "gzip" {
			return true
		}
	}
	return false
}
