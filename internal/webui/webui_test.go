package webui

import (
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/tether-dev/tether/internal/httpapi"
)

func serve(t *testing.T, mux *http.ServeMux, method, target string, hdr map[string]string, remote string) *http.Response {
	t.Helper()
	r := httptest.NewRequest(method, target, nil)
	if remote != "" {
		r.RemoteAddr = remote
	}
	for k, v := range hdr {
		if k == "Host" {
			r.Host = v
		} else {
			r.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	mux.ServeHTTP(w, r)
	return w.Result()
}

func body(t *testing.T, res *http.Response) string {
	t.Helper()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkSecurityHeaders(t *testing.T, res *http.Response, host string) {
	t.Helper()
	csp := res.Header.Get("Content-Security-Policy")
	for _, want := range []string{"default-src 'self'", "script-src 'self';", "object-src 'none'", "frame-ancestors 'none'",
		"connect-src 'self' ws://" + host + " wss://" + host} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if strings.Contains(strings.SplitN(strings.SplitN(csp, "script-src", 2)[1], ";", 2)[0], "unsafe") {
		t.Errorf("script-src is not strict: %q", csp)
	}
	if got := res.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("X-Content-Type-Options = %q", got)
	}
	if got := res.Header.Get("X-Frame-Options"); got != "DENY" {
		t.Errorf("X-Frame-Options = %q", got)
	}
}

// Without a bundle (as in a checkout where nobody ran `make web`), the
// console's routes answer 503 with a page that says how to build it.
func TestNotBuilt(t *testing.T) {
	mux := http.NewServeMux()
	Routes(mux, Options{FS: fstest.MapFS{"README": {Data: []byte("placeholder")}}})
	for _, p := range []string{"/", "/index.html"} {
		res := serve(t, mux, "GET", p, nil, "")
		if res.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("GET %s: %d, want 503", p, res.StatusCode)
		}
		if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		if cc := res.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("Cache-Control %q", cc)
		}
		b := body(t, res)
		if !strings.Contains(b, "not built") || !strings.Contains(b, "make web") {
			t.Errorf("the page does not say how to build the console:\n%s", b)
		}
		checkSecurityHeaders(t, res, "example.com")
	}
	if res := serve(t, mux, "GET", "/assets/index-abc.js", nil, ""); res.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("asset without a bundle: %d", res.StatusCode)
	}
	// The dev token route exists only when asked for.
	if res := serve(t, mux, "GET", "/api/dev/token", nil, "127.0.0.1:5555"); res.StatusCode != http.StatusNotFound {
		t.Errorf("/api/dev/token without DevToken: %d, want 404", res.StatusCode)
	}
}

// The embedded bundle may or may not be built in this checkout; either
// way New(nil) must work and serve / one way or the other.
func TestEmbedded(t *testing.T) {
	mux := http.NewServeMux()
	Routes(mux, Options{})
	res := serve(t, mux, "GET", "/", nil, "")
	want := http.StatusServiceUnavailable
	if New(nil).Built() {
		want = http.StatusOK
	}
	if res.StatusCode != want {
		t.Fatalf("GET /: %d, want %d", res.StatusCode, want)
	}
}

func builtFS() fstest.MapFS {
	return fstest.MapFS{
		"index.html":              {Data: []byte(`<!doctype html><script type="module" src="/assets/index-abc123.js"></script>`)},
		"assets/index-abc123.js":  {Data: []byte(`console.log("hi")`)},
		"assets/index-def456.css": {Data: []byte(`body{}`)},
		"favicon.svg":             {Data: []byte(`<svg xmlns="http://www.w3.org/2000/svg"/>`)},
	}
}

func TestBuilt(t *testing.T) {
	mux := http.NewServeMux()
	Routes(mux, Options{FS: builtFS()})
	// Another route of the node, to check that the console takes nothing
	// beyond its own paths.
	mux.HandleFunc("POST /api/publish", func(w http.ResponseWriter, r *http.Request) {})

	res := serve(t, mux, "GET", "/", nil, "")
	if res.StatusCode != 200 {
		t.Fatalf("GET /: %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("index Content-Type %q", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "no-cache" {
		t.Errorf("index Cache-Control %q", cc)
	}
	checkSecurityHeaders(t, res, "example.com")
	etag := res.Header.Get("ETag")
	if etag == "" || !strings.Contains(body(t, res), "index-abc123.js") {
		t.Fatalf("index: etag %q", etag)
	}
	if res := serve(t, mux, "GET", "/", map[string]string{"If-None-Match": etag}, ""); res.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET /: %d, want 304", res.StatusCode)
	}
	if res := serve(t, mux, "HEAD", "/", nil, ""); res.StatusCode != 200 {
		t.Errorf("HEAD /: %d", res.StatusCode)
	}

	for path, ct := range map[string]string{
		"/assets/index-abc123.js":  "text/javascript; charset=utf-8",
		"/assets/index-def456.css": "text/css; charset=utf-8",
	} {
		res := serve(t, mux, "GET", path, nil, "")
		if res.StatusCode != 200 {
			t.Fatalf("GET %s: %d", path, res.StatusCode)
		}
		if got := res.Header.Get("Content-Type"); got != ct {
			t.Errorf("%s: Content-Type %q, want %q", path, got, ct)
		}
		if got := res.Header.Get("Cache-Control"); got != "public, max-age=31536000, immutable" {
			t.Errorf("%s: Cache-Control %q", path, got)
		}
	}
	res = serve(t, mux, "GET", "/favicon.svg", nil, "")
	if res.StatusCode != 200 || res.Header.Get("Content-Type") != "image/svg+xml" || strings.Contains(res.Header.Get("Cache-Control"), "immutable") {
		t.Errorf("favicon: %d %q %q", res.StatusCode, res.Header.Get("Content-Type"), res.Header.Get("Cache-Control"))
	}
	for _, p := range []string{"/assets/missing.js", "/assets/", "/assets/../index.html"} {
		if res := serve(t, mux, "GET", p, nil, ""); res.StatusCode != http.StatusNotFound && res.StatusCode/100 != 3 {
			t.Errorf("GET %s: %d, want 404 (or the mux's redirect to the clean path)", p, res.StatusCode)
		}
	}
	// Paths that are not the console's keep the mux's answers.
	if res := serve(t, mux, "GET", "/nothing-here", nil, ""); res.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nothing-here: %d", res.StatusCode)
	}
	if res := serve(t, mux, "GET", "/api/publish", nil, ""); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /api/publish: %d, want 405 as before the console", res.StatusCode)
	}
	if res := serve(t, mux, "POST", "/", nil, ""); res.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /: %d, want 405", res.StatusCode)
	}
}

func TestDevToken(t *testing.T) {
	mux := http.NewServeMux()
	Routes(mux, Options{FS: builtFS(), DevToken: func() (string, error) { return "the.dev.token", nil }})
	ok := []struct {
		remote, host string
		hdr          map[string]string
	}{
		{"127.0.0.1:40000", "localhost:8000", nil},
		{"127.0.0.1:40000", "127.0.0.1:8000", map[string]string{"Sec-Fetch-Site": "same-origin"}},
		{"[::1]:40000", "[::1]:8000", nil},
	}
	for _, c := range ok {
		h := map[string]string{"Host": c.host}
		for k, v := range c.hdr {
			h[k] = v
		}
		res := serve(t, mux, "GET", "/api/dev/token", h, c.remote)
		b := body(t, res)
		if res.StatusCode != 200 || !strings.Contains(b, `"token":"the.dev.token"`) {
			t.Errorf("%s via %s: %d %s", c.remote, c.host, res.StatusCode, b)
		}
		if res.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
		}
	}
	refused := []struct {
		name, remote, host string
		hdr                map[string]string
	}{
		{"remote client", "192.0.2.7:40000", "localhost:8000", nil},
		{"remote client by IP", "10.1.2.3:40000", "10.1.2.4:8000", nil},
		{"DNS rebinding", "127.0.0.1:40000", "evil.example:8000", nil},
		{"behind a proxy", "127.0.0.1:40000", "localhost:8000", map[string]string{"X-Forwarded-For": "192.0.2.7"}},
		{"behind a proxy (Forwarded)", "127.0.0.1:40000", "localhost:8000", map[string]string{"Forwarded": "for=192.0.2.7"}},
		{"cross-site fetch", "127.0.0.1:40000", "localhost:8000", map[string]string{"Sec-Fetch-Site": "cross-site"}},
	}
	for _, c := range refused {
		h := map[string]string{"Host": c.host}
		for k, v := range c.hdr {
			h[k] = v
		}
		res := serve(t, mux, "GET", "/api/dev/token", h, c.remote)
		b := body(t, res)
		if res.StatusCode != http.StatusForbidden || strings.Contains(b, "the.dev.token") {
			t.Errorf("%s: %d %s, want 403 without the token", c.name, res.StatusCode, b)
		}
	}
}

// A dev token that cannot be minted gets a fixed 500; why goes to the log.
func TestDevTokenMintFailure(t *testing.T) {
	var logged strings.Builder
	mux := http.NewServeMux()
	Routes(mux, Options{FS: builtFS(), Logger: slog.New(slog.NewTextHandler(&logged, nil)), DevToken: func() (string, error) {
		return "", errors.New("sign with /var/lib/tether/dev-secret: permission denied")
	}})
	res := serve(t, mux, "GET", "/api/dev/token", map[string]string{"Host": "localhost:8000"}, "127.0.0.1:40000")
	b := body(t, res)
	if want := `{"error":"internal_error","message":"` + httpapi.InternalErrorMessage + `"}` + "\n"; res.StatusCode != 500 || b != want {
		t.Fatalf("mint failure: %d %q, want 500 %q", res.StatusCode, b, want)
	}
	if !strings.Contains(logged.String(), "permission denied") {
		t.Fatalf("the cause was not logged: %q", logged.String())
	}
}
