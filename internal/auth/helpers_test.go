package auth_test

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tether-dev/tether/internal/auth"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// t0 is the fixed "now" of every time-dependent test.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

var secret = []byte("0123456789abcdef0123456789abcdef") // exactly MinSecretLen

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

// Keys are generated once per test binary: RSA generation is slow under -race.
var (
	rsaKey  = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	rsaKey2 = sync.OnceValue(func() *rsa.PrivateKey { return must(rsa.GenerateKey(rand.Reader, 2048)) })
	p256Key = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)) })
	p384Key = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P384(), rand.Reader)) })
	p521Key = sync.OnceValue(func() *ecdsa.PrivateKey { return must(ecdsa.GenerateKey(elliptic.P521(), rand.Reader)) })
	edKey   = sync.OnceValue(func() ed25519.PrivateKey {
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			panic(err)
		}
		return k
	})
)

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// claims returns valid claims for t0: sub alice, issued at t0, expiring in an hour.
func claims(extra ...any) jwt.MapClaims {
	c := jwt.MapClaims{"sub": "alice", "iat": t0.Unix(), "exp": t0.Add(time.Hour).Unix()}
	for i := 0; i+1 < len(extra); i += 2 {
		k := extra[i].(string)
		if extra[i+1] == nil {
			delete(c, k)
		} else {
			c[k] = extra[i+1]
		}
	}
	return c
}

// sign signs c with m and key, adding header fields.
func sign(t testing.TB, m jwt.SigningMethod, key any, c jwt.Claims, header ...any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	for i := 0; i+1 < len(header); i += 2 {
		tok.Header[header[i].(string)] = header[i+1]
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign %s: %v", m.Alg(), err)
	}
	return s
}

// rawToken builds a token from literal JSON header and payload and a signature.
func rawToken(header, payload, sig string) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(header)) + "." + enc([]byte(payload)) + "." + sig
}

func writeFile(t testing.TB, data []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(p, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func pkixPEM(t testing.TB, pub any) []byte {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
}

func certPEM(t *testing.T, priv crypto.Signer) []byte {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: t0, NotAfter: t0.Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, priv.Public(), priv)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func newVerifier(t testing.TB, cfg auth.Config) *auth.Verifier {
	t.Helper()
	if cfg.Now == nil {
		cfg.Now = clock(t0)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	v, err := auth.NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatalf("NewVerifier: %v", err)
	}
	t.Cleanup(v.Close)
	return v
}

func pemVerifier(t *testing.T, pub any) *auth.Verifier {
	t.Helper()
	return newVerifier(t, auth.Config{PublicKeyFile: writeFile(t, pkixPEM(t, pub))})
}

func wantOK(t *testing.T, v *auth.Verifier, token string) *auth.Claims {
	t.Helper()
	c, err := v.Verify(token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if c.Subject != "alice" {
		t.Fatalf("Subject = %q, want alice", c.Subject)
	}
	return c
}

func wantReason(t *testing.T, v *auth.Verifier, token, reason string) error {
	t.Helper()
	c, err := v.Verify(token)
	if err == nil {
		t.Fatalf("Verify succeeded (%+v), want %s", c, reason)
	}
	if c != nil {
		t.Errorf("Verify returned claims with error %v", err)
	}
	var ae *auth.Error
	if !errors.As(err, &ae) {
		t.Fatalf("Verify error %v (%T) is not an *auth.Error", err, err)
	}
	if ae.Reason != reason {
		t.Fatalf("Reason = %q, want %q (err: %v)", ae.Reason, reason, err)
	}
	return err
}

// --- JWKS ---

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func rsaJWK(kid string, pub *rsa.PublicKey, extra ...string) map[string]any {
	j := map[string]any{"kty": "RSA", "kid": kid, "n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes())}
	for i := 0; i+1 < len(extra); i += 2 {
		j[extra[i]] = extra[i+1]
	}
	return j
}

func ecJWK(kid string, pub *ecdsa.PublicKey) map[string]any {
	point := must(pub.ECDH()).Bytes() // 0x04 || X || Y
	n := (len(point) - 1) / 2
	return map[string]any{"kty": "EC", "kid": kid, "crv": pub.Curve.Params().Name, "x": b64(point[1 : 1+n]), "y": b64(point[1+n:])}
}

func edJWK(kid string, pub ed25519.PublicKey) map[string]any {
	return map[string]any{"kty": "OKP", "kid": kid, "crv": "Ed25519", "x": b64(pub)}
}

// jwksServer is a JWKS endpoint that counts its hits. From request number
// blockFrom on (when set) requests hang until the client gives up or the
// test ends.
type jwksServer struct {
	*httptest.Server
	hits    atomic.Int64
	release chan struct{}

	mu        sync.Mutex
	keys      []map[string]any
	body      []byte // served verbatim when non-nil
	status    int
	blockFrom int64
}

func newJWKS(t *testing.T, keys ...map[string]any) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys, release: make(chan struct{}), status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	// One cleanup, so the blocked handlers are released before Close
	// waits for them.
	t.Cleanup(func() {
		close(s.release)
		s.Close()
	})
	return s
}

func (s *jwksServer) serve(w http.ResponseWriter, r *http.Request) {
	n := s.hits.Add(1)
	s.mu.Lock()
	keys, body, status, blockFrom := s.keys, s.body, s.status, s.blockFrom
	s.mu.Unlock()
	if blockFrom > 0 && n >= blockFrom {
		select {
		case <-s.release:
		case <-r.Context().Done():
		}
		return
	}
	if body == nil {
		body = must(json.Marshal(map[string]any{"keys": keys}))
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

func (s *jwksServer) set(f func(s *jwksServer)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s)
}

func wantHits(t *testing.T, s *jwksServer, want int64) {
	t.Helper()
	if got := s.hits.Load(); got != want {
		t.Fatalf("JWKS fetched %d times, want %d", got, want)
	}
}
