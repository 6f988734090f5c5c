package auth

import (
	"regexp"
	"strings"
)

// Redacted replaces a credential in what Redact returns.
const Redacted = "REDACTED"

// redactions are the shapes of credentials that Redact removes, each with
// the replacement (which keeps what says where the credential was).
var redactions = []struct {
	re   *regexp.Regexp
	repl string
}{
	// A parameter whose name says it holds a credential, in a query
	// (?token=, &access_token=, ?jwt=, ?TOKEN=), a path parameter
	// (;token=) or a form: its whole value, whatever its shape.
	{regexp.MustCompile(`(?i)([\w.-]*(?:token|jwt|secret|passw(?:or)?d|authorization|api[_-]?key)[\w.-]*=)[^&;?\s#"',]+`), "${1}" + Redacted},
	// A bearer authorization value: "Bearer <token>".
	{regexp.MustCompile(`(?i)\b(bearer\s+)[^\s,;"']+`), "${1}" + Redacted},
	// A compact JWS or JWE anywhere (a path segment, a subprotocol, an
	// error message). Its header is base64url of a JSON object, so it
	// starts with "e" and one of [w-z0-9_-] ("eyJ" is `{"`, "ewo" is
	// "{\n", "eyA" is "{ "); then 2 to 4 more dot-separated segments,
	// which may be empty (JWE with direct encryption, detached payload).
	{regexp.MustCompile(`e[w-z0-9_-][A-Za-z0-9_-]{8,}(?:\.[A-Za-z0-9_-]*){2,4}`), Redacted},
	// Any other run of 3 to 5 long base64url segments: a signed token
	// whose header this does not recognize. Host names and versions have
	// shorter labels.
	{regexp.MustCompile(`[A-Za-z0-9_-]{16,}(?:\.[A-Za-z0-9_-]{16,}){2,4}`), Redacted},
}

// Redact returns s with everything shaped like a credential replaced by
// Redacted: anything that looks like a JWT (three to five base64url
// segments separated by dots, wherever it is), the value of any parameter
// named like a credential (token, access_token, jwt, id_token, secret,
// password, api_key…; in any case, after ? & or ;), and what follows
// "Bearer ". Every log line that may carry a URL, a header or an error
// derived from client input goes through it.
func Redact(s string) string {
	if !mayHoldCredential(s) {
		return s
	}
	for _, r := range redactions {
		s = r.re.ReplaceAllString(s, r.repl)
	}
	return s
}

// mayHoldCredential is Redact's fast path: every pattern needs a dot, an
// equals sign or a space.
func mayHoldCredential(s string) bool {
	return strings.ContainsAny(s, ".= \t")
}
