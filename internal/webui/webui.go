// Package webui serves Tether's web console: the Vite bundle built from
// web/ into dist/console and embedded in the binary, and in --dev mode the
// endpoint through which the console signs itself in.
//
// The bundle is not committed. Without it the console's routes answer 503
// with a page saying how to build it, so that the Go build and tests never
// depend on Node.
package webui

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"path"
	"strings"
	"time"

	"github.com/tether-dev/tether/internal/httpapi"
)

//go:embed dist
var embedded embed.FS

// Options configure the console's routes.
type Options struct {
	// DevToken mints the token the console signs in with when it is opened
	// from this machine. Nil (the default, and always outside --dev) means
	// GET /api/dev/token does not exist.
	DevToken func() (string, error)
	// Logger receives what clients are not told, such as why the dev
	// token could not be minted (nil: discarded).
	Logger *slog.Logger
	// FS replaces the embedded bundle (tests); it holds index.html at its
	// root. Nil uses dist/console.
	FS fs.FS
}

// Routes mounts the console on mux: GET / (index.html), GET /assets/…
// (content-hashed files), GET /favicon.svg, and GET /api/dev/token when
// opts.DevToken is set. Only these exact paths are taken, so unknown paths
// and other methods keep the mux's own 404 and 405 answers.
func Routes(mux *http.ServeMux, opts Options) {
	h := New(opts.FS)
	mux.Handle("GET /{$}", h)
	mux.Handle("GET /index.html", h)
	mux.Handle("GET /assets/", h)
	mux.Handle("GET /favicon.svg", h)
	if opts.DevToken != nil {
		mux.Handle("GET /api/dev/token", DevTokenHandler(opts.DevToken, opts.Logger))
	}
}

// Handler serves the console's files.
type Handler struct {
	files fs.FS
	built bool
	index []byte
	etag  string
}

// New returns the handler of the bundle in files, or of the embedded bundle
// when files is nil.
func New(files fs.FS) *Handler {
	if files == nil {
		sub, err := fs.Sub(embedded, "dist/console")
		if err != nil {
			panic(err) // a constant, valid path
		}
		files = sub
	}
	h := &Handler{files: files}
	if b, err := fs.ReadFile(files, "index.html"); err == nil {
		h.built, h.index = true, b
		sum := sha256.Sum256(b)
		h.etag = `"` + hex.EncodeToString(sum[:8]) + `"`
	}
	return h
}

// Built reports whether the bundle is present.
func (h *Handler) Built() bool { return h.built }

// contentTypes are set explicitly rather than from the system's MIME
// database, which differs between machines.
var contentTypes = map[string]string{
	".html":  "text/html; charset=utf-8",
	".js":    "text/javascript; charset=utf-8",
	".mjs":   "text/javascript; charset=utf-8",
	".css":   "text/css; charset=utf-8",
	".svg":   "image/svg+xml",
	".png":   "image/png",
	".ico":   "image/x-icon",
	".json":  "application/json",
	".map":   "application/json",
	".woff":  "font/woff",
	".woff2": "font/woff2",
	".txt":   "text/plain; charset=utf-8",
}

// CSP is the console's Content-Security-Policy; connect-src is completed
// per request with the WebSocket origins of the request's host. xterm.js
// writes its theme into <style> elements, hence 'unsafe-inline' for styles
// only; scripts are strictly the bundle's own files.
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; " +
	"font-src 'self'; object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'; connect-src 'self'"

func securityHeaders(w http.ResponseWriter, r *http.Request) {
	hd := w.Header()
	csp := CSP
	if host := r.Host; host != "" && !strings.ContainsAny(host, " ;,'\"") {
		csp += " ws://" + host + " wss://" + host
	}
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Cross-Origin-Opener-Policy", "same-origin")
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	securityHeaders(w, r)
	p := r.URL.Path
	if p == "/" || p == "/index.html" {
		h.serveIndex(w, r)
		return
	}
	if !h.built {
		h.notBuilt(w, r)
		return
	}
	name := strings.TrimPrefix(path.Clean(p), "/")
	b, err := fs.ReadFile(h.files, name)
	if err != nil || name == "" {
		w.Header().Set("Cache-Control", "no-cache")
		http.Error(w, "404 page not found", http.StatusNotFound)
		return
	}
	if ct, ok := contentTypes[path.Ext(name)]; ok {
		w.Header().Set("Content-Type", ct)
	} else {
		w.Header().Set("Content-Type", "application/octet-stream")
	}
	if strings.HasPrefix(name, "assets/") {
		// Vite names every asset after a hash of its content.
		w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		w.Header().Set("Cache-Control", "public, max-age=3600")
	}
	http.ServeContent(w, r, name, time.Time{}, bytes.NewReader(b))
}

func (h *Handler) serveIndex(w http.ResponseWriter, r *http.Request) {
	if !h.built {
		h.notBuilt(w, r)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	// Revalidated on every load, so that a new binary's bundle is picked
	// up at once; the ETag keeps that cheap.
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("ETag", h.etag)
	http.ServeContent(w, r, "index.html", time.Time{}, bytes.NewReader(h.index))
}

// NotBuiltPage is the body of the console's routes when the binary was
// built without the bundle.
const NotBuiltPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Tether: console not built</title>
<meta name="viewport" content="width=device-width, initial-scale=1"></head>
<body style="font: 16px/1.5 system-ui, sans-serif; max-width: 40rem; margin: 3rem auto; padding: 0 1rem">
<h1>The web console is not built</h1>
<p>This tether binary was built without the console's bundle. The gateway
itself works: the WebSocket and REST endpoints are all available.</p>
<p>To build the console (Node.js 20.19 or newer), from the repository:</p>
<pre>make web            # npm ci and vite build in web/
make dev            # or: build it and run tether serve --dev</pre>
<p>then rebuild or restart tether. See docs/console.md.</p>
</body></html>
`

func (h *Handler) notBuilt(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusServiceUnavailable)
	if r.Method != http.MethodHead {
		_, _ = w.Write([]byte(NotBuiltPage))
	}
}

// DevTokenHandler answers GET /api/dev/token with {"token":…} minted by
// mint, so that the console opened on the developer's own machine signs in
// by itself. It is mounted only in --dev mode and answers 403 unless the
// request comes straight from this machine:
//
//   - the TCP peer is a loopback address;
//   - no Forwarded or X-Forwarded-For header (a proxy on this machine may be
//     relaying a remote client);
//   - the Host is localhost, 127.0.0.1 or [::1] (a page of another site
//     whose name resolves to 127.0.0.1, "DNS rebinding", has its own name
//     in Host);
//   - a browser's Sec-Fetch-Site, when sent, is same-origin or none.
//
// Cross-origin pages cannot read the answer anyway: there is no CORS.
//
// A failure to mint is logged to log, and the client gets a fixed 500
// internal_error.
func DevTokenHandler(mint func() (string, error), log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		w.Header().Set("X-Content-Type-Options", "nosniff")
		if !FromThisMachine(r) {
			httpapi.WriteError(w, http.StatusForbidden, "forbidden", "the dev token is only given to pages opened from this machine (http://localhost:<port>/)")
			return
		}
		tok, err := mint()
		if err != nil {
			httpapi.InternalError(w, r, log, err)
			return
		}
		httpapi.WriteJSON(w, http.StatusOK, map[string]string{"token": tok})
	})
}

// FromThisMachine reports whether r comes directly from a loopback client
// that addressed this server by a loopback name (see DevTokenHandler).
func FromThisMachine(r *http.Request) bool {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return false
	}
	if r.Header.Get("Forwarded") != "" || r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("X-Real-Ip") != "" {
		return false
	}
	name := r.Host
	if h, _, err := net.SplitHostPort(name); err == nil {
		name = h
	}
	name = strings.TrimSuffix(strings.Trim(name, "[]"), ".")
	if !strings.EqualFold(name, "localhost") {
		if ip := net.ParseIP(name); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return true
	}
	return false
}
