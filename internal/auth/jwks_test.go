package auth_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tether-dev/tether/internal/auth"
)

func jwksVerifier(t *testing.T, s *jwksServer, mod ...func(*auth.Config)) *auth.Verifier {
	t.Helper()
	cfg := auth.Config{JWKSURL: s.URL, JWKSTimeout: 2 * time.Second}
	for _, f := range mod {
		f(&cfg)
	}
	return newVerifier(t, cfg)
}

func TestJWKSKeysAndCaching(t *testing.T) {
	s := newJWKS(t, rsaJWK("rsa-1", &rsaKey().PublicKey), ecJWK("ec-1", &p256Key().PublicKey), edJWK("ed-1", edKey().Public().(ed25519.PublicKey)))
	v := jwksVerifier(t, s)
	wantHits(t, s, 1) // fetched up front

	toks := []string{
		sign(t, jwt.SigningMethodRS256, rsaKey(), claims(), "kid", "rsa-1"),
		sign(t, jwt.SigningMethodPS384, rsaKey(), claims(), "kid", "rsa-1"),
		sign(t, jwt.SigningMethodES256, p256Key(), claims(), "kid", "ec-1"),
		sign(t, jwt.SigningMethodEdDSA, edKey(), claims(), "kid", "ed-1"),
		// No kid: every key that fits the algorithm is tried.
		sign(t, jwt.SigningMethodRS256, rsaKey(), claims()),
		sign(t, jwt.SigningMethodES256, p256Key(), claims()),
	}
	for range 5 {
		for _, tok := range toks {
			wantOK(t, v, tok)
		}
	}
	wantHits(t, s, 1) // served from the cache
}

func TestJWKSRotation(t *testing.T) {
	s := newJWKS(t, rsaJWK("old", &rsaKey().PublicKey), ecJWK("ec", &p256Key().PublicKey))
	v := jwksVerifier(t, s)
	wantOK(t, v, sign(t, jwt.SigningMethodRS256, rsaKey(), claims(), "kid", "old"))
	wantHits(t, s, 1)

	// The identity provider rotates: a new kid appears in the set.
	s.set(func(s *jwksServer) {
		s.keys = append(s.keys, rsaJWK("new", &rsaKey2().PublicKey))
	})
	rotated := sign(t, jwt.SigningMethodRS256, rsaKey2(), claims(), "kid", "new")
	wantOK(t, v, rotated)
	wantHits(t, s, 2) // exactly one extra fetch
	wantOK(t, v, rotated)
	wantOK(t, v, sign(t, jwt.SigningMethodRS256, rsaKey(), claims(), "kid", "old"))
	wantHits(t, s, 2)

	// More unknown kids right away are refused without another fetch and
	// without waiting for the rate limiter.
	start := time.Now()
	for _, kid := range []string{"ghost-1", "ghost-2", "ghost-3"} {
		wantReason(t, v, sign(t, jwt.SigningMethodRS256, rsaKey(), claims(), "kid", kid), auth.ReasonInvalidToken)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("refusing unknown kids took %v; the rate limiter should fail fast", d)
	}
	wantHits(t, s, 2)
}

func TestJWKSRefusals(t *testing.T) {
	s := newJWKS(t,
		rsaJWK("rs256-only", &rsaKey().PublicKey, "alg", "RS256"),
		rsaJWK("enc", &rsaKey2().PublicKey, "use", "enc"),
		ecJWK("p384", &p384Key().PublicKey),
	)
	v := jwksVerifier(t, s)
	wantOK(t, v, sign(t, jwt.SigningMethodRS256, rsaKey(), claims(), "kid", "rs256-only"))
	wantOK(t, v, sign(t, jwt.SigningMethodES384, p384Key(), claims(), "kid", "p384"))

	rsaPub := rsaJWK("x", &rsaKey().PublicKey)["n"].(string)
	cases := map[string]string{
		"alg differs from the JWK's alg": sign(t, jwt.SigningMethodPS256, rsaKey(), claims(), "kid", "rs256-only"),
		"key meant for encryption":       sign(t, jwt.SigningMethodRS256, rsaKey2(), claims(), "kid", "enc"),
		"ES256 with a P-384 key":         sign(t, jwt.SigningMethodES256, p256Key(), claims(), "kid", "p384"),
		"RS256 naming an EC key":         sign(t, jwt.SigningMethodRS256, rsaKey(), claims(), "kid", "p384"),
		"HS256 with the JWK modulus":     sign(t, jwt.SigningMethodHS256, []byte(rsaPub), claims(), "kid", "rs256-only"),
		"HS256 with the JWK as JSON":     sign(t, jwt.SigningMethodHS256, must(json.Marshal(rsaJWK("rs256-only", &rsaKey().PublicKey))), claims()),
		"alg none":                       sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(), "kid", "rs256-only"),
		"kid not a string":               sign(t, jwt.SigningMethodRS256, rsaKey(), claims(), "kid", 7),
		"EdDSA without a matching key":   sign(t, jwt.SigningMethodEdDSA, edKey(), claims()),
		"expired claims still checked":   "",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) {
			if tok == "" {
				wantReason(t, v, sign(t, jwt.SigningMethodRS256, rsaKey(), claims("exp", t0.Add(-time.Hour).Unix()), "kid", "rs256-only"), auth.ReasonTokenExpired)
				return
			}
			wantReason(t, v, tok, auth.ReasonInvalidToken)
		})
	}
}

// A token must not be able to point the gateway at its own keys.
func TestJWKSIgnoresTokenKeyURLs(t *testing.T) {
	s := newJWKS(t, rsaJWK("real", &rsaKey().PublicKey))
	evil := newJWKS(t, rsaJWK("evil", &rsaKey2().PublicKey))
	v := jwksVerifier(t, s)
	evilJWK := rsaJWK("evil", &rsaKey2().PublicKey)
	for _, tok := range []string{
		sign(t, jwt.SigningMethodRS256, rsaKey2(), claims(), "kid", "evil", "jku", evil.URL, "x5u", evil.URL),
		sign(t, jwt.SigningMethodRS256, rsaKey2(), claims(), "jku", evil.URL),
		sign(t, jwt.SigningMethodRS256, rsaKey2(), claims(), "kid", "evil", "jwk", evilJWK),
	} {
		wantReason(t, v, tok, auth.ReasonInvalidToken)
	}
	wantHits(t, evil, 0)
}

func TestJWKSStartupFailures(t *testing.T) {
	t.Run("unreachable", func(t *testing.T) {
		s := newJWKS(t)
		url := s.URL
		s.Close()
		_, err := auth.NewVerifier(context.Background(), auth.Config{JWKSURL: url, JWKSTimeout: time.Second})
		if err == nil || !strings.Contains(err.Error(), url) {
			t.Fatalf("err = %v, want an error naming %s", err, url)
		}
	})
	weak := must(rsa.GenerateKey(rand.Reader, 1024))
	for _, tc := range []struct {
		name string
		f    func(*jwksServer)
		want string
	}{
		{"HTTP 500", func(s *jwksServer) { s.status = http.StatusInternalServerError }, "500"},
		{"not JSON", func(s *jwksServer) { s.body = []byte("<html>") }, "decode"},
		{"empty set", func(s *jwksServer) { s.keys = nil }, "has no keys"},
		{"only HMAC", func(s *jwksServer) { s.keys = []map[string]any{{"kty": "oct", "kid": "sym", "k": b64(secret)}} }, "symmetric"},
		{"too large", func(s *jwksServer) { s.body = []byte(`{"keys":[],"pad":"` + strings.Repeat("x", 2<<20) + `"}`) }, "exceeds"},
		{"weak RSA key", func(s *jwksServer) { s.keys = []map[string]any{rsaJWK("weak", &weak.PublicKey)} }, "1024 bits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newJWKS(t, rsaJWK("k", &rsaKey().PublicKey))
			s.set(tc.f)
			v, err := auth.NewVerifier(context.Background(), auth.Config{JWKSURL: s.URL, JWKSTimeout: time.Second})
			if err == nil {
				v.Close()
				t.Fatal("NewVerifier succeeded")
			}
			if !strings.Contains(err.Error(), s.URL) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q should name the URL and contain %q", err, tc.want)
			}
		})
	}
}

func TestJWKSTimeout(t *testing.T) {
	const timeout = 300 * time.Millisecond
	t.Run("NewVerifier", func(t *testing.T) {
		s := newJWKS(t, rsaJWK("k", &rsaKey().PublicKey))
		s.set(func(s *jwksServer) { s.blockFrom = 1 })
		start := time.Now()
		v, err := auth.NewVerifier(context.Background(), auth.Config{JWKSURL: s.URL, JWKSTimeout: timeout})
		if err == nil {
			v.Close()
			t.Fatal("NewVerifier succeeded against a hanging endpoint")
		}
		if d := time.Since(start); d > timeout+2*time.Second {
			t.Errorf("NewVerifier took %v with a %v timeout", d, timeout)
		}
		if !errors.Is(err, context.DeadlineExceeded) && !strings.Contains(err.Error(), "Timeout") {
			t.Errorf("error %q does not say it timed out", err)
		}
	})
	t.Run("Verify with unknown kid", func(t *testing.T) {
		s := newJWKS(t, rsaJWK("k", &rsaKey().PublicKey))
		v := jwksVerifier(t, s, func(c *auth.Config) { c.JWKSTimeout = timeout })
		s.set(func(s *jwksServer) { s.blockFrom = 2 }) // the refresh hangs
		start := time.Now()
		wantReason(t, v, sign(t, jwt.SigningMethodRS256, rsaKey2(), claims(), "kid", "new"), auth.ReasonInvalidToken)
		if d := time.Since(start); d > timeout+2*time.Second {
			t.Errorf("Verify took %v with a %v timeout", d, timeout)
		}
		wantHits(t, s, 2)
		// Known keys keep working while the endpoint hangs.
		wantOK(t, v, sign(t, jwt.SigningMethodRS256, rsaKey(), claims(), "kid", "k"))
	})
	t.Run("canceled context", func(t *testing.T) {
		s := newJWKS(t, rsaJWK("k", &rsaKey().PublicKey))
		s.set(func(s *jwksServer) { s.blockFrom = 1 })
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		start := time.Now()
		if _, err := auth.NewVerifier(ctx, auth.Config{JWKSURL: s.URL, JWKSTimeout: time.Minute}); err == nil {
			t.Fatal("NewVerifier succeeded with a canceled context")
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("NewVerifier ignored its context for %v", d)
		}
	})
}

func TestJWKSBackgroundRefresh(t *testing.T) {
	s := newJWKS(t, rsaJWK("k", &rsaKey().PublicKey))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	v, err := auth.NewVerifier(ctx, auth.Config{JWKSURL: s.URL, JWKSRefresh: 10 * time.Millisecond, Now: clock(t0)})
	if err != nil {
		t.Fatal(err)
	}
	// The refresh interval is real time; wait for a few refreshes rather
	// than sleeping a fixed amount.
	deadline := time.Now().Add(10 * time.Second)
	for s.hits.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("only %d fetches after 10s with a 10ms refresh interval", s.hits.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
	wantOK(t, v, sign(t, jwt.SigningMethodRS256, rsaKey(), claims(), "kid", "k"))
	// Canceling the parent context stops the refresh goroutine (goleak in
	// TestMain checks); Close afterwards is harmless, and so is a second one.
	cancel()
	v.Close()
	v.Close()
}

func TestJWKSConcurrentVerify(t *testing.T) {
	s := newJWKS(t, rsaJWK("rsa", &rsaKey().PublicKey), ecJWK("ec", &p256Key().PublicKey))
	v := jwksVerifier(t, s)
	good := []string{
		sign(t, jwt.SigningMethodRS256, rsaKey(), claims(), "kid", "rsa"),
		sign(t, jwt.SigningMethodES256, p256Key(), claims(), "kid", "ec"),
	}
	unknown := sign(t, jwt.SigningMethodES256, p256Key(), claims(), "kid", "unknown")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 20 {
				if _, err := v.Verify(good[(i+j)%2]); err != nil {
					t.Errorf("Verify: %v", err)
					return
				}
				if _, err := v.Verify(unknown); auth.ReasonOf(err) != auth.ReasonInvalidToken {
					t.Errorf("unknown kid: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	if n := s.hits.Load(); n > 2 {
		t.Errorf("%d fetches; unknown kids should trigger at most one rate-limited refresh", n)
	}
}
