package backbone

import "testing"

func TestSubjectToken(t *testing.T) {
	for in, want := range map[string]string{
		"alice":             "alice",
		"alice@example.com": "alice@example%2Ecom",
		"a b":               "a%20b",
		"*>":                "%2A%3E",
		"100%":              "100%25",
		"é":                 "%C3%A9",
		"":                  "%",
	} {
		if got := SubjectToken(in); got != want {
			t.Errorf("SubjectToken(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedact(t *testing.T) {
	if got := redact("nats://user:pw@host:4222,nats://h2:4222"); got != "nats://REDACTED@host:4222,nats://h2:4222" {
		t.Fatalf("got %q", got)
	}
}
