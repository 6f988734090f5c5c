// Package auth is the one place where Tether decides who a caller is. Every
// entry point (the WebSocket handshake, the in-band auth and refresh
// messages, the HTTP API) passes the caller's bearer JWT to a [Verifier] and
// gets back [Claims] or an [*Error] whose Reason is a stable code that is
// safe to send to the client and to use as a metric label.
//
// Key material comes from exactly one of: an HMAC secret, a PEM public key
// file, or a JWKS URL. The signing algorithms a token may use are derived
// from that key material and never from the token, so a token cannot pick a
// weaker algorithm than the operator configured: "none" is always refused,
// HS* only works with a secret, RS*/PS* only with RSA keys, ES256/384/512
// only with an ECDSA key on P-256/P-384/P-521 respectively, and EdDSA only
// with Ed25519.
//
// Every accepted token must carry exp and a non-empty sub; nbf and iat are
// checked when present. Roles and channels come from the custom "roles" and
// "channels" claims, which must be arrays of strings when present.
package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MaxTokenSize is the longest token Verify will parse, in bytes. Real tokens
// are well under 2 KiB; the cap stops a client from making the handshake
// base64-decode and JSON-parse megabytes before being refused.
const MaxTokenSize = 8 << 10

// Config selects the key material and the claim checks of a Verifier.
// Exactly one of Secret, PublicKeyFile and JWKSURL must be set.
type Config struct {
	// Secret is the HMAC key for HS256, HS384 and HS512 tokens; at least
	// MinSecretLen bytes.
	Secret []byte
	// PublicKeyFile is a PEM file holding a public key ("PUBLIC KEY" or
	// "RSA PUBLIC KEY") or a certificate: RSA for RS*/PS*, ECDSA for
	// ES256/384/512 matched to the curve, Ed25519 for EdDSA.
	PublicKeyFile string
	// JWKSURL is an http(s) URL serving a JSON Web Key Set of RSA, ECDSA or
	// Ed25519 keys.
	JWKSURL string
	// JWKSTimeout bounds one JWKS fetch, and also how long a Verify that
	// names an unknown kid may wait for the refresh it triggers (default 5s).
	JWKSTimeout time.Duration
	// JWKSRefresh is the background refresh interval of the key set
	// (default 1h).
	JWKSRefresh time.Duration
	// JWKSUnknownKIDInterval is the minimum interval between refreshes
	// triggered by tokens naming a kid not in the cached set (default 1m).
	// It lets a freshly rotated key work at once without letting a flood of
	// made-up kids hammer the identity provider.
	JWKSUnknownKIDInterval time.Duration
	// Issuer, when set, must equal the token's iss.
	Issuer string
	// Audience, when set, must be one of the token's aud values.
	Audience string
	// Leeway is the clock skew tolerated when checking exp, nbf and iat
	// (default 0).
	Leeway time.Duration
	// Now is the clock; nil means time.Now. Tests inject a fixed clock.
	Now func() time.Time
	// Logger receives background JWKS refresh failures; nil means
	// slog.Default().
	Logger *slog.Logger
}

// Verifier checks tokens against one Config. It is safe for concurrent use.
type Verifier struct {
	parser   *jwt.Parser
	keyfunc  jwt.Keyfunc
	algs     []string
	issuer   string
	audience string

	jwks      *jwksKeys // nil unless JWKSURL is configured
	closeOnce sync.Once
}

// NewVerifier builds a Verifier from cfg. ctx matters only with a JWKS URL,
// where it bounds the initial fetch and the background refresh.
//
// With a JWKS URL it fetches the key set before returning and fails if the
// endpoint is unreachable, slow (JWKSTimeout), or serves no usable key: a
// gateway that would refuse every token is better stopped at start-up with
// a clear error. It then keeps the set fresh in a background goroutine that
// runs until ctx is canceled or Close is called. Once started, refresh
// failures are logged and the cached keys stay in use.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	set := 0
	for _, ok := range []bool{len(cfg.Secret) > 0, cfg.PublicKeyFile != "", cfg.JWKSURL != ""} {
		if ok {
			set++
		}
	}
	if set != 1 {
		return nil, fmt.Errorf("auth: exactly one of a JWT secret, a public key file and a JWKS URL must be configured (got %d)", set)
	}
	if cfg.Leeway < 0 {
		return nil, fmt.Errorf("auth: leeway is negative (%v)", cfg.Leeway)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}

	v := &Verifier{issuer: cfg.Issuer, audience: cfg.Audience}
	switch {
	case len(cfg.Secret) > 0:
		// A private copy: the caller may reuse or wipe its slice.
		key := append([]byte(nil), cfg.Secret...)
		algs, err := algsFor(key)
		if err != nil {
			return nil, fmt.Errorf("auth: JWT secret: %w", err)
		}
		v.algs, v.keyfunc = algs, staticKeyfunc(key, algs)
	case cfg.PublicKeyFile != "":
		key, err := loadPublicKeyFile(cfg.PublicKeyFile)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		algs, _ := algsFor(key) // already checked by loadPublicKeyFile
		v.algs, v.keyfunc = algs, staticKeyfunc(key, algs)
	default:
		if err := defaultJWKS(&cfg); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		k, err := newJWKSKeys(ctx, &cfg)
		if err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		v.jwks, v.algs, v.keyfunc = k, jwksAlgs, k.keyfunc
	}

	opts := []jwt.ParserOption{
		jwt.WithValidMethods(v.algs),
		jwt.WithTimeFunc(cfg.Now),
		jwt.WithLeeway(cfg.Leeway),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
	}
	if cfg.Issuer != "" {
		opts = append(opts, jwt.WithIssuer(cfg.Issuer))
	}
	if cfg.Audience != "" {
		opts = append(opts, jwt.WithAudience(cfg.Audience))
	}
	v.parser = jwt.NewParser(opts...)
	return v, nil
}

// staticKeyfunc returns key for tokens whose alg is one of algs. The parser
// already enforces algs through WithValidMethods; checking again here keeps
// the key-type rule next to the key, where a future parser change cannot
// silently drop it.
func staticKeyfunc(key any, algs []string) jwt.Keyfunc {
	return func(t *jwt.Token) (any, error) {
		alg := t.Method.Alg()
		for _, a := range algs {
			if a == alg {
				return key, nil
			}
		}
		return nil, fmt.Errorf("algorithm %s does not match the configured %T key", alg, key)
	}
}

// Algorithms returns the signing algorithms this Verifier accepts, for
// start-up logs.
func (v *Verifier) Algorithms() []string {
	return append([]string(nil), v.algs...)
}

// Verify checks token's signature and claims and returns its claims. Any
// failure is an *Error; see the Reason* constants for what each reason
// means. An empty token yields ReasonMissingToken.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if token == "" {
		return nil, &Error{Reason: ReasonMissingToken}
	}
	if len(token) > MaxTokenSize {
		return nil, &Error{Reason: ReasonInvalidToken, Err: fmt.Errorf("token is %d bytes, more than the %d allowed", len(token), MaxTokenSize)}
	}
	if i := invalidTokenByte(token); i >= 0 {
		// Go's base64 decoder skips CR and LF, so without this check a
		// token with line breaks or other junk spliced in would verify.
		return nil, &Error{Reason: ReasonInvalidToken, Err: fmt.Errorf("token has a byte outside base64url at offset %d", i)}
	}
	var tc tokenClaims
	if _, err := v.parser.ParseWithClaims(token, &tc, v.keyfunc); err != nil {
		return nil, &Error{Reason: v.reason(err, &tc), Err: err}
	}
	return tc.claims(), nil
}

// tokenBytes marks the bytes of a compact JWS: the base64url alphabet and
// the dots between the parts.
var tokenBytes = func() (t [256]bool) {
	for _, c := range "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_." {
		t[c] = true
	}
	return t
}()

// invalidTokenByte returns the offset of the first byte of token that
// cannot appear in a compact JWS, or -1.
func invalidTokenByte(token string) int {
	for i := 0; i < len(token); i++ {
		if !tokenBytes[token[i]] {
			return i
		}
	}
	return -1
}

// reason maps a jwt parse error to a Reason. Claim-specific reasons are only
// given once the signature has been verified (jwt reports claim failures as
// ErrTokenInvalidClaims, and only after the signature check), so a forger
// learns nothing from them. When several claims fail, the structural
// problems win over the time-dependent ones, which win over iss and aud.
func (v *Verifier) reason(err error, tc *tokenClaims) string {
	switch {
	case !errors.Is(err, jwt.ErrTokenInvalidClaims):
		return ReasonInvalidToken // malformed, unverifiable or badly signed
	case errors.Is(err, errMissingSubject):
		return ReasonInvalidToken
	case tc.ExpiresAt == nil:
		return ReasonMissingExp
	case errors.Is(err, jwt.ErrTokenExpired):
		return ReasonTokenExpired
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return ReasonNotYetValid
	// jwt reports an absent required iss or aud as
	// ErrTokenRequiredClaimMissing, the same as an absent exp, so look at
	// the claims themselves to tell them apart.
	case errors.Is(err, jwt.ErrTokenInvalidIssuer), v.issuer != "" && tc.Issuer != v.issuer:
		return ReasonInvalidIssuer
	case errors.Is(err, jwt.ErrTokenInvalidAudience), v.audience != "" && errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return ReasonInvalidAudience
	default:
		return ReasonInvalidToken
	}
}

// Close stops the JWKS background refresh and aborts unknown-kid refreshes
// in flight; Verify keeps working from the cached keys. It is a no-op for
// secret and public-key-file verifiers and safe to call more than once.
func (v *Verifier) Close() {
	v.closeOnce.Do(func() {
		if v.jwks != nil {
			v.jwks.close()
		}
	})
}

// errMissingSubject rejects tokens that do not say whom they are for.
var errMissingSubject = errors.New("sub claim is missing or empty")

// tokenClaims is the JSON shape Verify decodes. Typed fields make jwt's
// decoder reject wrongly typed claims (roles as a string, exp as text) as
// malformed, which is what ReasonInvalidToken promises.
type tokenClaims struct {
	jwt.RegisteredClaims
	// These shadow RegisteredClaims' fields of the same JSON names, which
	// also accept a string holding a number ("exp":"1999999999"); the
	// Get* methods below hand them to jwt's validator.
	ExpiresAt *numericDate `json:"exp"`
	NotBefore *numericDate `json:"nbf"`
	IssuedAt  *numericDate `json:"iat"`
	Roles     []string     `json:"roles"`
	Channels  []string     `json:"channels"`
}

// numericDate is a jwt.NumericDate that must be a JSON number, as RFC 7519
// defines exp, nbf and iat: jwt's own also decodes a string holding a
// number. Anything else fails the decoding, so the token is
// ReasonInvalidToken.
type numericDate struct{ jwt.NumericDate }

// errNotNumber rejects a time claim that is not a JSON number.
var errNotNumber = errors.New("time claim is not a JSON number")

// UnmarshalJSON implements json.Unmarshaler. null never gets here: the
// pointer field stays nil, as if the claim were absent.
func (d *numericDate) UnmarshalJSON(b []byte) error {
	if len(b) == 0 || (b[0] != '-' && (b[0] < '0' || b[0] > '9')) {
		return errNotNumber
	}
	return d.NumericDate.UnmarshalJSON(b)
}

// date returns d's jwt.NumericDate, or nil when the claim is absent.
func (d *numericDate) date() *jwt.NumericDate {
	if d == nil {
		return nil
	}
	return &d.NumericDate
}

// GetExpirationTime implements jwt.Claims with the strict exp.
func (tc *tokenClaims) GetExpirationTime() (*jwt.NumericDate, error) { return tc.ExpiresAt.date(), nil }

// GetNotBefore implements jwt.Claims with the strict nbf.
func (tc *tokenClaims) GetNotBefore() (*jwt.NumericDate, error) { return tc.NotBefore.date(), nil }

// GetIssuedAt implements jwt.Claims with the strict iat.
func (tc *tokenClaims) GetIssuedAt() (*jwt.NumericDate, error) { return tc.IssuedAt.date(), nil }

// Validate implements jwt.ClaimsValidator; jwt calls it after the
// signature and the registered claims have been checked.
func (tc *tokenClaims) Validate() error {
	if strings.TrimSpace(tc.Subject) == "" {
		return errMissingSubject
	}
	return nil
}

func (tc *tokenClaims) claims() *Claims {
	c := &Claims{
		Subject:   tc.Subject,
		Roles:     tc.Roles,
		Channels:  tc.Channels,
		ExpiresAt: tc.ExpiresAt.Time, // non-nil: exp is required
	}
	if tc.IssuedAt != nil {
		c.IssuedAt = tc.IssuedAt.Time
	}
	return c
}
