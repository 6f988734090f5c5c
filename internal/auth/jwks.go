package auth

import (
	"context"
	"crypto"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"
)

// maxJWKSBody caps a JWKS response. Real sets are a few KiB; the cap keeps a
// misbehaving endpoint from making the gateway buffer an unbounded body.
const maxJWKSBody = 1 << 20

// jwksKeys resolves token keys from a JWKS endpoint through keyfunc's
// storage, which caches the set, refreshes it in the background and, rate
// limited, when a token names an unknown kid.
type jwksKeys struct {
	// ctx is canceled by Verifier.Close; it bounds the refresh goroutine and
	// any unknown-kid refresh a Verify call is waiting on.
	ctx     context.Context
	cancel  context.CancelFunc
	storage jwkset.Storage
}

// newJWKSKeys fetches the set at cfg.JWKSURL once before returning, so a
// wrong URL or a down identity provider stops the gateway at start-up with a
// clear error instead of refusing every token later.
func newJWKSKeys(ctx context.Context, cfg *Config) (*jwksKeys, error) {
	u, err := url.Parse(cfg.JWKSURL)
	if err != nil {
		return nil, fmt.Errorf("JWKS URL: %w", err)
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("JWKS URL %q: want an absolute http or https URL", cfg.JWKSURL)
	}

	// A private transport without keep-alives: the set is fetched about
	// once an hour, so pooling buys nothing, and with no idle connections
	// there is no connection goroutine left behind after Close or after
	// ctx ends, whichever comes first.
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.DisableKeepAlives = true
	transport.ResponseHeaderTimeout = cfg.JWKSTimeout
	client := &http.Client{
		Transport: limitBodyTransport{base: transport, limit: maxJWKSBody},
		Timeout:   cfg.JWKSTimeout,
	}

	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	ctx, cancel := context.WithCancel(ctx)
	noStartWithoutKeys := false
	kf, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{cfg.JWKSURL}, keyfunc.Override{
		Client:                    client,
		HTTPTimeout:               cfg.JWKSTimeout,
		NoErrorReturnFirstHTTPReq: &noStartWithoutKeys,
		// The limiter wait and the refresh it allows share this deadline,
		// so a Verify naming an unknown kid blocks for at most
		// JWKSTimeout. When the limiter has no token to give within that
		// time, Wait fails at once: floods of random kids cost nothing.
		RateLimitWaitMax:  cfg.JWKSTimeout,
		RefreshInterval:   cfg.JWKSRefresh,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(cfg.JWKSUnknownKIDInterval), 1),
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(_ context.Context, err error) {
				if ctx.Err() != nil {
					return // shutting down: the failure is ours, not the endpoint's
				}
				logger.Error("auth: JWKS refresh failed; keeping the cached keys", "url", Redact(u), "error", Redact(err.Error()))
			}
		},
	})
	if err != nil {
		// keyfunc starts its refresh goroutine before the first fetch.
		cancel()
		return nil, fmt.Errorf("fetch JWKS %s: %w", cfg.JWKSURL, oneLine{err})
	}
	k := &jwksKeys{ctx: ctx, cancel: cancel, storage: kf.Storage()}
	all, err := k.storage.KeyReadAll(ctx)
	if err != nil {
		k.close()
		return nil, fmt.Errorf("read JWKS %s: %w", cfg.JWKSURL, err)
	}
	var firstErr error
	for _, j := range all {
		_, err := verificationKey(j, "")
		if err == nil {
			return k, nil
		}
		if firstErr == nil {
			firstErr = fmt.Errorf("key %q: %w", j.Marshal().KID, err)
		}
	}
	k.close()
	if firstErr == nil {
		return nil, fmt.Errorf("JWKS %s has no keys", cfg.JWKSURL)
	}
	return nil, fmt.Errorf("JWKS %s: none of its %d keys is a usable RSA, ECDSA or Ed25519 signature key (first: %w)", cfg.JWKSURL, len(all), firstErr)
}

// close stops the refresh goroutine and aborts unknown-kid refreshes in
// flight.
func (k *jwksKeys) close() { k.cancel() }

// keyfunc is the jwt.Keyfunc for JWKS mode. It looks keys up by kid only in
// the configured set; jku, x5u and embedded jwk/x5c headers are ignored, as
// honouring them would let a token choose its own key.
func (k *jwksKeys) keyfunc(t *jwt.Token) (any, error) {
	alg := t.Method.Alg()
	if raw, ok := t.Header["kid"]; ok {
		kid, ok := raw.(string)
		if !ok {
			return nil, errors.New("kid header is not a string")
		}
		j, err := k.storage.KeyRead(k.ctx, kid)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %q: %w", kid, err)
		}
		key, err := verificationKey(j, alg)
		if err != nil {
			return nil, fmt.Errorf("JWKS key %q: %w", kid, err)
		}
		return key, nil
	}
	// Without a kid, offer every key that fits the algorithm; jwt tries
	// each. This never triggers a refresh: there is no unknown kid to
	// look for.
	all, err := k.storage.KeyReadAll(k.ctx)
	if err != nil {
		return nil, fmt.Errorf("read JWKS: %w", err)
	}
	var set jwt.VerificationKeySet
	for _, j := range all {
		if key, err := verificationKey(j, alg); err == nil {
			set.Keys = append(set.Keys, key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("no JWKS key can verify %s", alg)
	}
	return set, nil
}

// verificationKey returns j's public key if j may verify a token signed with
// alg; an empty alg checks only that j is a usable signature key.
func verificationKey(j jwkset.JWK, alg string) (any, error) {
	m := j.Marshal()
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("key use is %q, not sig", m.USE)
	}
	if alg != "" && m.ALG != "" && m.ALG.String() != alg {
		return nil, fmt.Errorf("key is for %s, token is %s", m.ALG, alg)
	}
	key := j.Key()
	// A set that wrongly publishes private keys still verifies with their
	// public half.
	if p, ok := key.(interface{ Public() crypto.PublicKey }); ok {
		key = p.Public()
	}
	if _, ok := key.([]byte); ok {
		return nil, errors.New("symmetric keys in a JWKS are not secret and are refused")
	}
	algs, err := algsFor(key)
	if err != nil {
		return nil, err
	}
	if alg == "" {
		return key, nil
	}
	for _, a := range algs {
		if a == alg {
			return key, nil
		}
	}
	return nil, fmt.Errorf("%T cannot verify %s", key, alg)
}

// oneLine keeps the errors.Join output of jwkset and keyfunc on one line in
// start-up logs, while errors.Is still sees the causes.
type oneLine struct{ err error }

func (e oneLine) Error() string { return strings.ReplaceAll(e.err.Error(), "\n", "; ") }
func (e oneLine) Unwrap() error { return e.err }

// limitBodyTransport fails a response whose body exceeds limit bytes.
type limitBodyTransport struct {
	base  http.RoundTripper
	limit int64
}

// RoundTrip implements http.RoundTripper.
func (t limitBodyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	resp.Body = &limitedBody{ReadCloser: resp.Body, left: t.limit}
	return resp, nil
}

type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	if b.left < 0 {
		return n, fmt.Errorf("JWKS response exceeds %d bytes", maxJWKSBody)
	}
	return n, err
}

// defaultJWKS fills in the JWKS defaults and rejects nonsense durations.
func defaultJWKS(cfg *Config) error {
	for _, d := range []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"JWKSTimeout", &cfg.JWKSTimeout, 5 * time.Second},
		{"JWKSRefresh", &cfg.JWKSRefresh, time.Hour},
		{"JWKSUnknownKIDInterval", &cfg.JWKSUnknownKIDInterval, time.Minute},
	} {
		switch {
		case *d.v < 0:
			return fmt.Errorf("%s is negative (%v)", d.name, *d.v)
		case *d.v == 0:
			*d.v = d.def
		}
	}
	return nil
}
