package auth

import "errors"

// Reasons are the stable, machine-readable codes carried by [Error]. They go
// on the wire (auth_error frames, HTTP 401 bodies) and become metric labels,
// so they must never change meaning; add new codes instead.
const (
	// ReasonMissingToken means the caller presented no token at all.
	ReasonMissingToken = "missing_token"
	// ReasonInvalidToken covers everything that makes a token untrustworthy:
	// malformed input, a bad signature, an unsupported algorithm or one that
	// does not match the configured key, claims of the wrong JSON type, a
	// missing sub, or a token larger than MaxTokenSize.
	ReasonInvalidToken = "invalid_token"
	// ReasonTokenExpired means exp is in the past (beyond the leeway).
	ReasonTokenExpired = "token_expired"
	// ReasonNotYetValid means nbf or iat is in the future (beyond the leeway).
	ReasonNotYetValid = "token_not_yet_valid"
	// ReasonMissingExp means the token has no exp claim; Tether refuses
	// tokens that never expire.
	ReasonMissingExp = "missing_exp"
	// ReasonInvalidIssuer means an issuer is configured and iss is absent or
	// different.
	ReasonInvalidIssuer = "invalid_issuer"
	// ReasonInvalidAudience means an audience is configured and aud is absent
	// or does not contain it.
	ReasonInvalidAudience = "invalid_audience"
)

// Error is the error returned by [Verifier.Verify]. Reason is one of the
// Reason* constants and is safe to show to clients; Err holds the detail for
// logs and may mention attacker-controlled input, so it must not be sent back.
type Error struct {
	Reason string
	Err    error
}

// Error implements the error interface.
func (e *Error) Error() string {
	if e.Err == nil {
		return "auth: " + e.Reason
	}
	return "auth: " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the underlying cause so errors.Is sees through an *Error.
func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the Reason of the first *Error in err's chain. An error
// without one still means authentication failed, so it yields
// ReasonInvalidToken; only a nil error yields "".
func ReasonOf(err error) string {
	if err == nil {
		return ""
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Reason
	}
	return ReasonInvalidToken
}

// publicMessages are the fixed sentences clients get for each reason. They
// never carry the parser's or the key set's text: that may quote attacker
// input or describe the server's keys, and goes to the log instead.
var publicMessages = map[string]string{
	ReasonMissingToken:    "a token is required: send it as Authorization: Bearer <token>, as the tether.token.<token> subprotocol, or in an auth message",
	ReasonInvalidToken:    "the token is not valid",
	ReasonTokenExpired:    "the token has expired",
	ReasonNotYetValid:     "the token is not valid yet",
	ReasonMissingExp:      "the token has no exp claim; Tether refuses tokens that never expire",
	ReasonInvalidIssuer:   "the token's issuer is not accepted",
	ReasonInvalidAudience: "the token's audience is not accepted",
}

// Public returns what a client may be told of a verification error: its
// Reason and a fixed sentence for it. It is the one place that turns an
// auth error into a reply, so that no caller can leak Err by accident; log
// err itself (at debug level) where the detail helps an operator.
func Public(err error) (reason, message string) {
	reason = ReasonOf(err)
	if reason == "" {
		return "", ""
	}
	if m, ok := publicMessages[reason]; ok {
		return reason, m
	}
	return reason, "authentication failed"
}
