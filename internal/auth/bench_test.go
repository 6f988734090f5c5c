package auth_test

import (
	"testing"

	"github.com/golang-jwt/jwt/v5"
	"github.com/tether-dev/tether/internal/auth"
)

var benchClaims = claims("roles", []string{"agent"}, "channels", []string{"room:*", "dm:alice"})

// benchVerify measures one Verify (serial) and the throughput of many
// handshakes verifying at once (parallel).
func benchVerify(b *testing.B, v *auth.Verifier, token string) {
	if _, err := v.Verify(token); err != nil {
		b.Fatal(err)
	}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(token); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := v.Verify(token); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

func BenchmarkVerifyHS256(b *testing.B) {
	v := newVerifier(b, auth.Config{Secret: secret})
	benchVerify(b, v, sign(b, jwt.SigningMethodHS256, secret, benchClaims))
}

func BenchmarkVerifyES256(b *testing.B) {
	v := newVerifier(b, auth.Config{PublicKeyFile: writeFile(b, pkixPEM(b, &p256Key().PublicKey))})
	benchVerify(b, v, sign(b, jwt.SigningMethodES256, p256Key(), benchClaims))
}
