package auth_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tether-dev/tether/internal/auth"
)

func TestHMAC(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret})
	for _, m := range []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS384, jwt.SigningMethodHS512} {
		t.Run(m.Alg(), func(t *testing.T) {
			c := wantOK(t, v, sign(t, m, secret, claims("roles", []string{"agent"}, "channels", []string{"room:*", "dm:alice"})))
			if !slices.Equal(c.Roles, []string{"agent"}) || !slices.Equal(c.Channels, []string{"room:*", "dm:alice"}) {
				t.Errorf("claims = %+v", c)
			}
			if !c.ExpiresAt.Equal(t0.Add(time.Hour)) || !c.IssuedAt.Equal(t0) {
				t.Errorf("exp/iat = %v/%v", c.ExpiresAt, c.IssuedAt)
			}
			wantReason(t, v, sign(t, m, []byte("another-secret-another-secret-xx"), claims()), auth.ReasonInvalidToken)
		})
	}
	if got := v.Algorithms(); !slices.Equal(got, []string{"HS256", "HS384", "HS512"}) {
		t.Errorf("Algorithms() = %v", got)
	}
}

func TestPublicKeyFile(t *testing.T) {
	cases := []struct {
		name string
		pub  any
		m    jwt.SigningMethod
		priv any
	}{
		{"RS256", &rsaKey().PublicKey, jwt.SigningMethodRS256, rsaKey()},
		{"RS512", &rsaKey().PublicKey, jwt.SigningMethodRS512, rsaKey()},
		{"PS256", &rsaKey().PublicKey, jwt.SigningMethodPS256, rsaKey()},
		{"ES256", &p256Key().PublicKey, jwt.SigningMethodES256, p256Key()},
		{"ES384", &p384Key().PublicKey, jwt.SigningMethodES384, p384Key()},
		{"ES512", &p521Key().PublicKey, jwt.SigningMethodES512, p521Key()},
		{"EdDSA", edKey().Public(), jwt.SigningMethodEdDSA, edKey()},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := pemVerifier(t, tc.pub)
			wantOK(t, v, sign(t, tc.m, tc.priv, claims()))
			// The same claims under an HS256 signature must not pass.
			wantReason(t, v, sign(t, jwt.SigningMethodHS256, secret, claims()), auth.ReasonInvalidToken)
		})
	}
}

func TestPublicKeyFileFormats(t *testing.T) {
	rsaTok := sign(t, jwt.SigningMethodRS256, rsaKey(), claims())
	t.Run("PKCS1", func(t *testing.T) {
		data := pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsaKey().PublicKey)})
		wantOK(t, newVerifier(t, auth.Config{PublicKeyFile: writeFile(t, data)}), rsaTok)
	})
	t.Run("RSA certificate", func(t *testing.T) {
		wantOK(t, newVerifier(t, auth.Config{PublicKeyFile: writeFile(t, certPEM(t, rsaKey()))}), rsaTok)
	})
	t.Run("ECDSA certificate", func(t *testing.T) {
		v := newVerifier(t, auth.Config{PublicKeyFile: writeFile(t, certPEM(t, p256Key()))})
		wantOK(t, v, sign(t, jwt.SigningMethodES256, p256Key(), claims()))
	})
}

func TestPublicKeyFileRejected(t *testing.T) {
	pkcs8 := func(k any) []byte {
		return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(k))})
	}
	p224 := must(ecdsa.GenerateKey(elliptic.P224(), rand.Reader))
	rsa1024 := must(rsa.GenerateKey(rand.Reader, 1024))
	cases := []struct {
		name string
		data []byte
		want string
	}{
		{"PKCS8 private key", pkcs8(rsaKey()), "not the private key"},
		{"RSA private key", pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(rsaKey())}), "not the private key"},
		{"EC private key", pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: must(x509.MarshalECPrivateKey(p256Key()))}), "not the private key"},
		{"Ed25519 private key", pkcs8(edKey()), "not the private key"},
		{"garbage", []byte("this is not a key"), "no PEM block"},
		{"empty", nil, "no PEM block"},
		{"corrupt DER", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}), "parse PUBLIC KEY"},
		{"unknown block", pem.EncodeToMemory(&pem.Block{Type: "OPENSSH PUBLIC KEY", Bytes: []byte("x")}), "unsupported PEM block"},
		{"P-224", pkixPEM(t, &p224.PublicKey), "P-224 is not supported"},
		{"RSA 1024", pkixPEM(t, &rsa1024.PublicKey), "1024 bits"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.data)
			_, err := auth.NewVerifier(context.Background(), auth.Config{PublicKeyFile: path})
			if err == nil {
				t.Fatal("NewVerifier succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), path) {
				t.Fatalf("error %q should name the file and contain %q", err, tc.want)
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "nope.pem")
		_, err := auth.NewVerifier(context.Background(), auth.Config{PublicKeyFile: path})
		if !errors.Is(err, os.ErrNotExist) || !strings.Contains(err.Error(), path) {
			t.Fatalf("err = %v, want a not-exist error naming the file", err)
		}
	})
}

func TestConfigRejected(t *testing.T) {
	cases := []struct {
		name string
		cfg  auth.Config
		want string
	}{
		{"nothing", auth.Config{}, "exactly one"},
		{"secret and file", auth.Config{Secret: secret, PublicKeyFile: "k.pem"}, "exactly one"},
		{"all three", auth.Config{Secret: secret, PublicKeyFile: "k.pem", JWKSURL: "http://x"}, "exactly one"},
		{"short secret", auth.Config{Secret: []byte("secret")}, "6 bytes; at least 32"},
		{"negative leeway", auth.Config{Secret: secret, Leeway: -time.Second}, "leeway"},
		{"JWKS bad scheme", auth.Config{JWKSURL: "ftp://example.com/jwks"}, "http or https"},
		{"JWKS relative", auth.Config{JWKSURL: "/jwks.json"}, "http or https"},
		{"JWKS negative timeout", auth.Config{JWKSURL: "http://127.0.0.1/", JWKSTimeout: -1}, "JWKSTimeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := auth.NewVerifier(context.Background(), tc.cfg)
			if err == nil {
				v.Close()
				t.Fatal("NewVerifier succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestAlgorithmConfusion(t *testing.T) {
	rsaPEM := pkixPEM(t, &rsaKey().PublicKey)
	rsaV := newVerifier(t, auth.Config{PublicKeyFile: writeFile(t, rsaPEM)})
	hsV := newVerifier(t, auth.Config{Secret: secret})

	t.Run("alg none", func(t *testing.T) {
		none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims())
		wantReason(t, hsV, none, auth.ReasonInvalidToken)
		wantReason(t, rsaV, none, auth.ReasonInvalidToken)
		payload := `{"sub":"alice","exp":` + fmt.Sprint(t0.Add(time.Hour).Unix()) + `}`
		for _, alg := range []string{"none", "None", "NONE", ""} {
			tok := rawToken(`{"alg":"`+alg+`","typ":"JWT"}`, payload, "")
			wantReason(t, hsV, tok, auth.ReasonInvalidToken)
			wantReason(t, rsaV, tok, auth.ReasonInvalidToken)
		}
	})
	t.Run("HS256 signed with the RSA public key PEM", func(t *testing.T) {
		wantReason(t, rsaV, sign(t, jwt.SigningMethodHS256, rsaPEM, claims()), auth.ReasonInvalidToken)
		wantReason(t, rsaV, sign(t, jwt.SigningMethodHS512, rsaPEM, claims()), auth.ReasonInvalidToken)
		der := must(x509.MarshalPKIXPublicKey(&rsaKey().PublicKey))
		wantReason(t, rsaV, sign(t, jwt.SigningMethodHS256, der, claims()), auth.ReasonInvalidToken)
	})
	t.Run("RS256 against an HMAC verifier", func(t *testing.T) {
		wantReason(t, hsV, sign(t, jwt.SigningMethodRS256, rsaKey(), claims()), auth.ReasonInvalidToken)
	})
	t.Run("ES256 against a P-384 key", func(t *testing.T) {
		v := pemVerifier(t, &p384Key().PublicKey)
		wantReason(t, v, sign(t, jwt.SigningMethodES256, p256Key(), claims()), auth.ReasonInvalidToken)
		wantOK(t, v, sign(t, jwt.SigningMethodES384, p384Key(), claims()))
	})
	t.Run("EdDSA against an RSA key", func(t *testing.T) {
		wantReason(t, rsaV, sign(t, jwt.SigningMethodEdDSA, edKey(), claims()), auth.ReasonInvalidToken)
	})
	t.Run("wrong RSA key", func(t *testing.T) {
		wantReason(t, rsaV, sign(t, jwt.SigningMethodRS256, rsaKey2(), claims()), auth.ReasonInvalidToken)
	})
}

func TestTimeClaims(t *testing.T) {
	at := func(d time.Duration) int64 { return t0.Add(d).Unix() }
	strict := newVerifier(t, auth.Config{Secret: secret})
	lenient := newVerifier(t, auth.Config{Secret: secret, Leeway: time.Minute})
	cases := []struct {
		name          string
		c             jwt.MapClaims
		strict, loose string // "" means accepted
	}{
		{"valid", claims(), "", ""},
		{"no iat", claims("iat", nil), "", ""},
		{"expired", claims("exp", at(-time.Hour)), auth.ReasonTokenExpired, auth.ReasonTokenExpired},
		{"expired now", claims("exp", at(0)), auth.ReasonTokenExpired, ""},
		{"expired within leeway", claims("exp", at(-30*time.Second)), auth.ReasonTokenExpired, ""},
		{"exp missing", claims("exp", nil), auth.ReasonMissingExp, auth.ReasonMissingExp},
		{"exp missing and nbf future", claims("exp", nil, "nbf", at(time.Hour)), auth.ReasonMissingExp, auth.ReasonMissingExp},
		{"nbf future", claims("nbf", at(time.Hour)), auth.ReasonNotYetValid, auth.ReasonNotYetValid},
		{"nbf within leeway", claims("nbf", at(30*time.Second)), auth.ReasonNotYetValid, ""},
		{"nbf past", claims("nbf", at(-time.Minute)), "", ""},
		{"iat future", claims("iat", at(time.Hour)), auth.ReasonNotYetValid, auth.ReasonNotYetValid},
		{"iat within leeway", claims("iat", at(30*time.Second)), auth.ReasonNotYetValid, ""},
		{"exp wrong type", claims("exp", "tomorrow"), auth.ReasonInvalidToken, auth.ReasonInvalidToken},
		{"nbf wrong type", claims("nbf", true), auth.ReasonInvalidToken, auth.ReasonInvalidToken},
		// jwt's NumericDate also decodes a string holding a number; the
		// claims are numbers (RFC 7519 §2), so that is a wrong type too.
		{"exp numeric string", claims("exp", strconv.FormatInt(at(time.Hour), 10)), auth.ReasonInvalidToken, auth.ReasonInvalidToken},
		{"exp float string", claims("exp", "1999999999.5"), auth.ReasonInvalidToken, auth.ReasonInvalidToken},
		{"nbf numeric string", claims("nbf", strconv.FormatInt(at(-time.Minute), 10)), auth.ReasonInvalidToken, auth.ReasonInvalidToken},
		{"iat numeric string", claims("iat", strconv.FormatInt(at(-time.Minute), 10)), auth.ReasonInvalidToken, auth.ReasonInvalidToken},
		{"exp fractional", claims("exp", float64(at(time.Hour))+0.5), "", ""},
		{"exp null", claims("exp", json.RawMessage("null")), auth.ReasonMissingExp, auth.ReasonMissingExp},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, jwt.SigningMethodHS256, secret, tc.c)
			for _, x := range []struct {
				v    *auth.Verifier
				want string
			}{{strict, tc.strict}, {lenient, tc.loose}} {
				if x.want == "" {
					wantOK(t, x.v, tok)
				} else {
					wantReason(t, x.v, tok, x.want)
				}
			}
		})
	}
}

func TestIssuerAudience(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret, Issuer: "https://idp.example", Audience: "tether"})
	cases := []struct {
		name string
		c    jwt.MapClaims
		want string
	}{
		{"both match", claims("iss", "https://idp.example", "aud", "tether"), ""},
		{"aud array", claims("iss", "https://idp.example", "aud", []string{"other", "tether"}), ""},
		{"wrong iss", claims("iss", "https://evil.example", "aud", "tether"), auth.ReasonInvalidIssuer},
		{"missing iss", claims("aud", "tether"), auth.ReasonInvalidIssuer},
		{"wrong aud", claims("iss", "https://idp.example", "aud", "other"), auth.ReasonInvalidAudience},
		{"wrong aud array", claims("iss", "https://idp.example", "aud", []string{"a", "b"}), auth.ReasonInvalidAudience},
		{"missing aud", claims("iss", "https://idp.example"), auth.ReasonInvalidAudience},
		{"expired beats issuer", claims("iss", "x", "exp", t0.Add(-time.Hour).Unix()), auth.ReasonTokenExpired},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok := sign(t, jwt.SigningMethodHS256, secret, tc.c)
			if tc.want == "" {
				wantOK(t, v, tok)
			} else {
				wantReason(t, v, tok, tc.want)
			}
		})
	}
	// Without configured iss/aud, any or none are accepted.
	wantOK(t, newVerifier(t, auth.Config{Secret: secret}), sign(t, jwt.SigningMethodHS256, secret, claims("iss", "anyone", "aud", "anything")))
}

func TestMalformedClaims(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret})
	cases := []struct {
		name string
		c    jwt.MapClaims
	}{
		{"sub missing", claims("sub", nil)},
		{"sub empty", claims("sub", "")},
		{"sub blank", claims("sub", "  ")},
		{"sub number", claims("sub", 42)},
		{"roles string", claims("roles", "admin")},
		{"roles object", claims("roles", map[string]bool{"admin": true})},
		{"roles numbers", claims("roles", []int{1, 2})},
		{"roles mixed", claims("roles", []any{"admin", 1})},
		{"channels string", claims("channels", "room:*")},
		{"aud number", claims("aud", 7)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			wantReason(t, v, sign(t, jwt.SigningMethodHS256, secret, tc.c), auth.ReasonInvalidToken)
		})
	}
	t.Run("null roles", func(t *testing.T) {
		c := wantOK(t, v, sign(t, jwt.SigningMethodHS256, secret, claims("roles", nil)))
		if c.Roles != nil || c.HasRole(auth.RoleAdmin) {
			t.Errorf("roles = %v", c.Roles)
		}
	})
}

func TestGarbage(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret})
	good := sign(t, jwt.SigningMethodHS256, secret, claims())
	parts := strings.Split(good, ".")
	admin := sign(t, jwt.SigningMethodHS256, []byte("attacker-secret-attacker-secret!"), claims("roles", []string{"admin"}))
	cases := map[string]string{
		"word":                 "garbage",
		"dots":                 "...",
		"two parts":            parts[0] + "." + parts[1],
		"four parts":           good + ".x",
		"junk parts":           "a.b.c",
		"bad base64":           "eyJ!!.eyJ!!.sig",
		"header not JSON":      rawToken("nope", `{"sub":"alice"}`, parts[2]),
		"payload not JSON":     parts[0] + "." + b64([]byte("nope")) + "." + parts[2],
		"payload array":        parts[0] + "." + b64([]byte(`["sub"]`)) + "." + parts[2],
		"no signature":         parts[0] + "." + parts[1] + ".",
		"signature truncated":  good[:len(good)-4],
		"payload swapped":      parts[0] + "." + strings.Split(admin, ".")[1] + "." + parts[2],
		"unknown alg":          rawToken(`{"alg":"HS1024"}`, `{"sub":"alice"}`, parts[2]),
		"alg not a string":     rawToken(`{"alg":256}`, `{"sub":"alice"}`, parts[2]),
		"bearer prefix kept":   "Bearer " + good,
		"surrounding spaces":   " " + good + " ",
		"newline in signature": good + "\n",
		"newline in payload":   parts[0] + "." + parts[1][:5] + "\r\n" + parts[1][5:] + "." + parts[2],
		"padding":              good + "==",
		"NUL":                  good + "\x00",
	}
	for name, tok := range cases {
		t.Run(name, func(t *testing.T) { wantReason(t, v, tok, auth.ReasonInvalidToken) })
	}
	t.Run("empty", func(t *testing.T) { wantReason(t, v, "", auth.ReasonMissingToken) })
}

func TestTokenSizeCap(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret})
	big := sign(t, jwt.SigningMethodHS256, secret, claims("pad", strings.Repeat("x", auth.MaxTokenSize)))
	err := wantReason(t, v, big, auth.ReasonInvalidToken)
	if !strings.Contains(err.Error(), "bytes") {
		t.Errorf("error %q should explain the size limit", err)
	}
	// A validly signed token just under the cap still passes.
	tok := sign(t, jwt.SigningMethodHS256, secret, claims("pad", strings.Repeat("x", auth.MaxTokenSize*3/4-200)))
	if len(tok) > auth.MaxTokenSize || len(tok) < auth.MaxTokenSize-400 {
		t.Fatalf("test token is %d bytes, want just under %d", len(tok), auth.MaxTokenSize)
	}
	wantOK(t, v, tok)
}

func TestMint(t *testing.T) {
	tok, err := auth.Mint(secret, auth.MintClaims{
		Subject: "alice", Roles: []string{auth.RoleAdmin, auth.RoleAgent}, Channels: []string{"room:*"},
		TTL: 90 * time.Minute, Now: t0.Add(500 * time.Millisecond), Issuer: "tether", Audience: "tether-api",
	})
	if err != nil {
		t.Fatal(err)
	}
	v := newVerifier(t, auth.Config{Secret: secret, Issuer: "tether", Audience: "tether-api", Now: clock(t0.Add(time.Minute))})
	c := wantOK(t, v, tok)
	if !slices.Equal(c.Roles, []string{"admin", "agent"}) || !slices.Equal(c.Channels, []string{"room:*"}) {
		t.Errorf("claims = %+v", c)
	}
	if !c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(t0.Add(90*time.Minute)) {
		t.Errorf("iat/exp = %v/%v, want %v/%v (whole seconds)", c.IssuedAt, c.ExpiresAt, t0, t0.Add(90*time.Minute))
	}
	if !c.IsAdmin() || !c.HasRole(auth.RoleAgent) || c.HasRole("root") {
		t.Errorf("role checks wrong for %v", c.Roles)
	}

	// Without iss/aud the verifier for them refuses; minimal claims are omitted.
	tok, err = auth.Mint(secret, auth.MintClaims{Subject: "alice", TTL: time.Hour, Now: t0})
	if err != nil {
		t.Fatal(err)
	}
	wantReason(t, v, tok, auth.ReasonInvalidIssuer)
	payload, _, err := jwt.NewParser().ParseUnverified(tok, jwt.MapClaims{})
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"roles", "channels", "iss", "aud", "nbf"} {
		if _, ok := payload.Claims.(jwt.MapClaims)[k]; ok {
			t.Errorf("minimal token has %q", k)
		}
	}
	if payload.Header["alg"] != "HS256" {
		t.Errorf("alg = %v", payload.Header["alg"])
	}

	// Zero Now means the real clock.
	tok, err = auth.Mint(secret, auth.MintClaims{Subject: "alice", TTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	wantOK(t, newVerifier(t, auth.Config{Secret: secret, Now: time.Now}), tok)

	for name, mc := range map[string]auth.MintClaims{
		"no subject": {TTL: time.Minute},
		"no TTL":     {Subject: "alice"},
		"negative":   {Subject: "alice", TTL: -time.Minute},
	} {
		if _, err := auth.Mint(secret, mc); err == nil {
			t.Errorf("Mint(%s) succeeded", name)
		}
	}
	if _, err := auth.Mint([]byte("short"), auth.MintClaims{Subject: "alice", TTL: time.Minute}); err == nil {
		t.Error("Mint with a short secret succeeded")
	}
}

func TestClaimsRoles(t *testing.T) {
	var nilClaims *auth.Claims
	if nilClaims.HasRole(auth.RoleAdmin) || nilClaims.IsAdmin() {
		t.Error("nil claims have roles")
	}
	c := &auth.Claims{Roles: []string{"agent"}}
	if c.IsAdmin() || !c.HasRole(auth.RoleAgent) {
		t.Error("role checks wrong")
	}
}

func TestErrorAndReasonOf(t *testing.T) {
	cause := errors.New("cause")
	e := &auth.Error{Reason: auth.ReasonTokenExpired, Err: cause}
	wrapped := fmt.Errorf("handshake: %w", e)
	if got := auth.ReasonOf(wrapped); got != auth.ReasonTokenExpired {
		t.Errorf("ReasonOf(wrapped) = %q", got)
	}
	if !errors.Is(wrapped, cause) {
		t.Error("Unwrap does not reach the cause")
	}
	if e.Error() != "auth: token_expired: cause" {
		t.Errorf("Error() = %q", e.Error())
	}
	if got := (&auth.Error{Reason: auth.ReasonMissingToken}).Error(); got != "auth: missing_token" {
		t.Errorf("Error() = %q", got)
	}
	if got := auth.ReasonOf(errors.New("other")); got != auth.ReasonInvalidToken {
		t.Errorf("ReasonOf(other) = %q", got)
	}
	if got := auth.ReasonOf(nil); got != "" {
		t.Errorf("ReasonOf(nil) = %q", got)
	}
}

func TestVerifyConcurrent(t *testing.T) {
	v := newVerifier(t, auth.Config{Secret: secret})
	good := sign(t, jwt.SigningMethodHS256, secret, claims())
	expired := sign(t, jwt.SigningMethodHS256, secret, claims("exp", t0.Add(-time.Hour).Unix()))
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := v.Verify(good); err != nil {
					t.Errorf("worker %d: %v", i, err)
					return
				}
				if auth.ReasonOf(errOf(v.Verify(expired))) != auth.ReasonTokenExpired {
					t.Errorf("worker %d: expired token not refused as expired", i)
					return
				}
			}
		})
	}
	wg.Wait()
}

// errOf returns the error of a (value, error) pair.
func errOf[T any](_ T, err error) error { return err }
