package httpapi_test

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/httpapi"
	"github.com/tether-dev/tether/internal/testkit"
)

// A refused REST token gets auth.Public's fixed sentence, never the
// parser's text; the detail goes to the debug log.
func TestRESTTokenErrorsAreFixed(t *testing.T) {
	var buf testkit.SyncBuffer
	n := testkit.Start(t, nil, slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug})))
	expired := testkit.Mint(t, auth.MintClaims{Subject: "alice", TTL: time.Hour, Now: time.Now().Add(-2 * time.Hour)})
	for _, c := range []struct {
		name, tok, code, msg string
	}{
		{"none", "", auth.ReasonMissingToken, httpapi.MissingTokenMessage},
		{"malformed", "not-a-jwt", auth.ReasonInvalidToken, "the token is not valid"},
		{"garbage header", "eyJub3QganNvbg.eyJzdWIiOiJ4In0.c2ln", auth.ReasonInvalidToken, "the token is not valid"},
		{"bad signature", testkit.Token(t, "alice") + "x", auth.ReasonInvalidToken, "the token is not valid"},
		{"expired", expired, auth.ReasonTokenExpired, "the token has expired"},
	} {
		for _, path := range []string{"/api/operations", "/api/milestones", "/api/agents"} {
			status, body := testkit.Do(t, http.MethodGet, n.HTTP+path, c.tok, nil)
			if status != http.StatusUnauthorized || body["error"] != c.code || body["message"] != c.msg || len(body) != 2 {
				t.Errorf("%s: GET %s: %d %v, want 401 {error:%s message:%q}", c.name, path, status, body, c.code, c.msg)
			}
		}
	}
	status, body := testkit.Do(t, http.MethodPost, n.HTTP+"/api/publish", "not-a-jwt", strings.NewReader(`{}`))
	if status != http.StatusUnauthorized || body["message"] != "the token is not valid" {
		t.Errorf("POST /api/publish: %d %v", status, body)
	}
	// The operator still learns why, at debug level.
	testkit.Eventually(t, "the refusal logged", func() bool {
		return strings.Contains(buf.String(), `"msg":"http: token refused"`) && strings.Contains(buf.String(), "token is malformed")
	})
}

// When NATS is gone, REST calls answer 503 with one fixed sentence; the
// NATS error goes to the log only.
func TestRESTUnavailableIsFixed(t *testing.T) {
	var buf testkit.SyncBuffer
	n := testkit.Start(t, nil, slog.New(slog.NewJSONHandler(&buf, nil)))
	admin := testkit.Token(t, "root", "admin")
	n.Backbone.NC.Close() // the node loses NATS; its HTTP server stays up
	for _, c := range []struct{ method, path, body string }{
		{http.MethodGet, "/api/milestones", ""},
		{http.MethodGet, "/api/milestones/ms-1", ""},
		{http.MethodPost, "/api/milestones", `{"id":"ms-2"}`},
		{http.MethodGet, "/api/agents", ""},
	} {
		status, body := testkit.Do(t, c.method, n.HTTP+c.path, admin, strings.NewReader(c.body))
		if status != http.StatusServiceUnavailable || body["error"] != "unavailable" || body["message"] != httpapi.UnavailableMessage || len(body) != 2 {
			t.Errorf("%s %s: %d %v, want 503 {error:unavailable message:%q}", c.method, c.path, status, body, httpapi.UnavailableMessage)
		}
	}
	testkit.Eventually(t, "the cause logged", func() bool {
		return strings.Contains(buf.String(), `"msg":"http: request failed"`) && strings.Contains(buf.String(), "connection closed")
	})
}

// DecodeBody's 400s describe where the body is wrong, never quote it.
func TestDecodeBodyMessages(t *testing.T) {
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var v struct {
			Channel string            `json:"channel"`
			Cols    int               `json:"cols"`
			Env     map[string]string `json:"env"`
		}
		if httpapi.DecodeBody(w, r, &v) {
			httpapi.WriteJSON(w, http.StatusOK, v)
		}
	})
	long := strings.Repeat("9", 10000)
	key := strings.Repeat("k", 10000) // not named in the message
	for _, c := range []struct{ body, code, msg string }{
		{``, "bad_request", "a JSON body is required"},
		{`{"channel":`, "bad_request", "invalid JSON body: it ends early"},
		{`{"channel": x}`, "bad_request", "invalid JSON body at byte 13: invalid character 'x' looking for beginning of value"},
		{`{"channel":` + long + `}`, "bad_request", `invalid JSON body: "channel" must be of JSON type string`},
		{`{"cols":"` + long + `"}`, "bad_request", `invalid JSON body: "cols" must be of JSON type number`},
		{`{"env":{"` + key + `":1}}`, "bad_request", `invalid JSON body: "env" must be of JSON type string`},
		{`[` + long + `]`, "bad_request", "invalid JSON body: it must be a JSON object"},
		{`{"channel":"` + strings.Repeat("x", httpapi.MaxBodyBytes) + `"}`, "too_large", "the request body is larger than 1 MiB"},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", strings.NewReader(c.body)))
		var got httpapi.Error
		if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
			t.Fatalf("body %.40q: answer %q is not an error: %v", c.body, rec.Body.String(), err)
		}
		if got.Error != c.code || got.Message != c.msg {
			t.Errorf("body %.40q: %d %s %q, want %s %q", c.body, rec.Code, got.Error, got.Message, c.code, c.msg)
		}
	}
}
