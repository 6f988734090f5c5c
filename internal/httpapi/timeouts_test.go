package httpapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/httpapi"
)

// wait bounds every wait of these tests.
const wait = 10 * time.Second

// A response write to a client that does not read fails after
// Timeouts.Write instead of blocking the handler for ever.
func TestDeadlinesWriteToStalledClient(t *testing.T) {
	const d = 200 * time.Millisecond
	failed := make(chan error, 1)
	srv := httptest.NewServer(httpapi.Deadlines(httpapi.Timeouts{Read: d, Write: d}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := make([]byte, 64<<10)
		for i := 0; i < 64<<10; i++ { // 4 GiB: far more than the socket buffers
			if _, err := w.Write(buf); err != nil {
				failed <- err
				return
			}
		}
		failed <- errors.New("4 GiB written to a client that reads nothing")
	})))
	defer srv.Close()
	c, err := net.DialTimeout("tcp", srv.Listener.Addr().String(), wait)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-failed:
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("write error %v, want a deadline exceeded", err)
		}
	case <-time.After(wait):
		t.Fatalf("the handler is still writing to a client that reads nothing after %v", wait)
	}
}

// A stream that keeps writing lives longer than Timeouts.Write: the
// deadline is renewed with every write and flush.
func TestDeadlinesRenewedByWrites(t *testing.T) {
	const d = 200 * time.Millisecond
	srv := httptest.NewServer(httpapi.Deadlines(httpapi.Timeouts{Read: d, Write: d}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := range 10 { // 10 × d/2: 2.5 write timeouts in all
			if _, err := fmt.Fprintf(w, "%d\n", i); err != nil {
				return
			}
			if err := rc.Flush(); err != nil {
				return
			}
			time.Sleep(d / 2) // the stream's own pace, not a wait for a condition
		}
	})))
	defer srv.Close()
	body := get(t, srv.URL, nil)
	if want := "0\n1\n2\n3\n4\n5\n6\n7\n8\n9\n"; body != want {
		t.Fatalf("stream body %q, want %q", body, want)
	}
}

// Once the body has been read, a handler may take longer than
// Timeouts.Read: its context is not canceled by the read deadline (which
// http.Server.ReadTimeout would do).
func TestDeadlinesSlowHandlerAfterBody(t *testing.T) {
	const d = 200 * time.Millisecond
	srv := httptest.NewServer(httpapi.Deadlines(httpapi.Timeouts{Read: d, Write: d}, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		select {
		case <-r.Context().Done():
			return // the client sees no answer
		case <-time.After(4 * d): // the handler's work
		}
		_, _ = w.Write(b)
	})))
	defer srv.Close()
	if body := get(t, srv.URL, strings.NewReader("payload")); body != "payload" {
		t.Fatalf("body %q, want the payload echoed", body)
	}
}

// get makes a request (a POST when body is not nil) and returns the
// response body, failing on any other status than 200.
func get(t *testing.T, url string, body io.Reader) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	req, _ := http.NewRequestWithContext(ctx, method, url, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("%s %s: %d %q %v", method, url, resp.StatusCode, b, err)
	}
	return string(b)
}
