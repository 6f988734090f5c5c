package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// The keyfuncs refuse a mismatched algorithm on their own, independently of
// the parser's WithValidMethods list: two locks on the same door.
func TestStaticKeyfuncChecksAlgorithm(t *testing.T) {
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edPub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret := make([]byte, MinSecretLen)
	cases := []struct {
		key        any
		ok, refuse []jwt.SigningMethod
	}{
		{secret, []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodHS512}, []jwt.SigningMethod{jwt.SigningMethodRS256, jwt.SigningMethodEdDSA, jwt.SigningMethodNone}},
		{&rsaKey.PublicKey, []jwt.SigningMethod{jwt.SigningMethodRS256, jwt.SigningMethodPS512}, []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodES256, jwt.SigningMethodNone}},
		{&ecKey.PublicKey, []jwt.SigningMethod{jwt.SigningMethodES384}, []jwt.SigningMethod{jwt.SigningMethodES256, jwt.SigningMethodES512, jwt.SigningMethodHS384}},
		{edPub, []jwt.SigningMethod{jwt.SigningMethodEdDSA}, []jwt.SigningMethod{jwt.SigningMethodHS256, jwt.SigningMethodRS256}},
	}
	for _, tc := range cases {
		algs, err := algsFor(tc.key)
		if err != nil {
			t.Fatalf("algsFor(%T): %v", tc.key, err)
		}
		kf := staticKeyfunc(tc.key, algs)
		for _, m := range tc.ok {
			if _, err := kf(&jwt.Token{Method: m}); err != nil {
				t.Errorf("%T refused %s: %v", tc.key, m.Alg(), err)
			}
		}
		for _, m := range tc.refuse {
			if _, err := kf(&jwt.Token{Method: m}); err == nil {
				t.Errorf("%T accepted %s", tc.key, m.Alg())
			}
		}
	}
}
