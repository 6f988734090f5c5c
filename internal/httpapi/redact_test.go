package httpapi_test

import (
	"bufio"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/httpapi"
	"github.com/tether-dev/tether/internal/testkit"
)

// The request log of a real node never carries a token, however the client
// put it in the URL.
func TestRequestLogRedactsTokens(t *testing.T) {
	var buf testkit.SyncBuffer
	log := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	n := testkit.Start(t, nil, log)
	tok := testkit.Token(t, "alice", "admin")
	sig := tok[strings.LastIndex(tok, ".")+1:]
	paths := []string{
		"/api/operations?token=" + tok,
		"/api/operations?access_token=" + tok,
		"/api/operations?TOKEN=" + tok,
		"/api/operations?jwt=" + tok,
		"/api/operations;token=" + tok,
		"/api/milestones/" + tok,
		"/api/operations?x=" + tok,
	}
	for _, p := range paths {
		testkit.Do(t, http.MethodGet, n.HTTP+p, "", nil)
	}
	if c, _, err := testkit.TryDial(t, n.WS+"/ws/agent?access_token="+tok, nil); err == nil {
		c.C.CloseNow()
	}
	// Every request is logged once, after it is answered.
	testkit.Eventually(t, "every request logged", func() bool {
		return strings.Count(buf.String(), `"msg":"http"`) >= len(paths)+1
	})
	out := buf.String()
	if strings.Contains(out, sig) {
		t.Fatalf("a token reached the request log:\n%s", out)
	}
	for _, want := range []string{
		`"url":"/api/operations?token=REDACTED"`,
		`"url":"/api/operations?access_token=REDACTED"`,
		`"url":"/api/operations?TOKEN=REDACTED"`,
		`"url":"/api/operations?jwt=REDACTED"`,
		`"url":"/api/operations;token=REDACTED"`,
		`"url":"/api/milestones/REDACTED"`,
		`"url":"/api/operations?x=REDACTED"`,
		`"url":"/ws/agent?access_token=REDACTED"`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("request log has no %q:\n%s", want, out)
		}
	}
}

// What net/http itself logs (here a handler's panic) is redacted too.
func TestServerErrorLogRedacted(t *testing.T) {
	var buf testkit.SyncBuffer
	log := slog.New(slog.NewTextHandler(&buf, nil))
	tok := testkit.Token(t, "alice")
	srv := httpapi.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("bad token " + tok)
	}), httpapi.Timeouts{Idle: time.Second, Read: time.Second, Write: time.Second}, log)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	defer func() {
		_ = srv.Close()
		<-served
	}()
	c, err := net.DialTimeout("tcp", ln.Addr().String(), wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait))
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	// The server closes the connection of a handler that panicked.
	if _, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
		t.Fatal("a response after a panic")
	}
	testkit.Eventually(t, "the panic logged", func() bool { return strings.Contains(buf.String(), "panic serving") })
	out := buf.String()
	if !strings.Contains(out, "bad token REDACTED") || strings.Contains(out, tok[strings.LastIndex(tok, ".")+1:]) {
		t.Fatalf("server log not redacted:\n%s", out)
	}
	if !strings.Contains(out, "level=WARN") {
		t.Fatalf("server log not at warn level:\n%s", out)
	}
}
