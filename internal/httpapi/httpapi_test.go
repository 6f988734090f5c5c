package httpapi

import (
	"net/url"
	"testing"
)

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"/ws/agent?token=abc.def.ghi":        "/ws/agent?token=REDACTED",
		"/ws/agent?a=1&token=x&b=2":          "/ws/agent?a=1&token=REDACTED&b=2",
		"/api/milestones/x/terminal?since=5": "/api/milestones/x/terminal?since=5",
		"/healthz":                           "/healthz",
		"/ws/agent?access_token=abc":         "/ws/agent?access_token=REDACTED",
	} {
		u, _ := url.Parse(in)
		if got := RedactURL(u); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
