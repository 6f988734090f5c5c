package channels

import (
	"testing"

	"github.com/tether-dev/tether/internal/auth"
)

func TestMatch(t *testing.T) {
	cases := []struct {
		pattern, name string
		want          bool
	}{
		{"room:*", "room:1", true},
		{"room:*", "room:", true},
		{"room:*", "roo", false},
		{"room:*", "lobby", false},
		{"*", "anything", true},
		{"team:*:chat", "team:42:chat", true},
		{"team:*:chat", "team:42:chatter", false},
		{"a*b*c", "aXXbYYc", true},
		{"a*b*c", "aXXbYY", false},
		{"exact", "exact", true},
		{"exact", "exactly", false},
		{"**", "x", true},
	}
	for _, tc := range cases {
		if got := Match(tc.pattern, tc.name); got != tc.want {
			t.Errorf("Match(%q, %q) = %v", tc.pattern, tc.name, got)
		}
	}
}

func TestAllowed(t *testing.T) {
	alice := &auth.Claims{Subject: "alice", Channels: []string{"room:*"}}
	admin := &auth.Claims{Subject: "root", Roles: []string{"admin"}}
	for _, tc := range []struct {
		cl   *auth.Claims
		ch   string
		want bool
	}{
		{alice, "user:alice", true},
		{alice, "user:bob", false},
		{alice, "room:7", true},
		{alice, "team:1", false},
		{admin, "user:bob", true},
	} {
		if got := Allowed(tc.cl, tc.ch); got != tc.want {
			t.Errorf("Allowed(%s, %q) = %v", tc.cl.Subject, tc.ch, got)
		}
	}
}

func TestValidName(t *testing.T) {
	long := make([]byte, 256)
	for i := range long {
		long[i] = 'a'
	}
	for name, want := range map[string]bool{
		"room:1": true, "user:alice@example.com": true, "": false, "a b": false,
		"room:*": false, "a>b": false, "tab\there": false, "é": false, string(long): false, string(long[:255]): true,
	} {
		if got := ValidName(name); got != want {
			t.Errorf("ValidName(%q) = %v", name, got)
		}
	}
}

func TestEncode(t *testing.T) {
	got := string(Encode(`say "hi"`, "alice", []byte(`{"a":1}`), 7))
	want := `{"type":"message","channel":"say \"hi\"","data":{"a":1},"from":"alice","seq":7}`
	if got != want {
		t.Fatalf("got %s\nwant %s", got, want)
	}
	if got := string(Encode("c", "u", nil, 1)); got != `{"type":"message","channel":"c","data":null,"from":"u","seq":1}` {
		t.Fatalf("got %s", got)
	}
}
