package auth_test

import (
	"context"
	"fmt"
	"time"

	"github.com/tether-dev/tether/internal/auth"
)

func ExampleMint() {
	secret := []byte("example-secret-of-at-least-32-bytes")
	issued := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)

	token, err := auth.Mint(secret, auth.MintClaims{
		Subject:  "alice",
		Roles:    []string{auth.RoleAgent},
		Channels: []string{"room:*"},
		TTL:      time.Hour,
		Now:      issued,
	})
	if err != nil {
		panic(err)
	}

	v, err := auth.NewVerifier(context.Background(), auth.Config{
		Secret: secret,
		Now:    func() time.Time { return issued.Add(time.Minute) },
	})
	if err != nil {
		panic(err)
	}
	defer v.Close()

	claims, err := v.Verify(token)
	if err != nil {
		panic(err)
	}
	fmt.Println(claims.Subject, claims.Roles, claims.Channels, claims.ExpiresAt.UTC().Format(time.RFC3339))

	_, err = v.Verify(token[:len(token)-2])
	fmt.Println(auth.ReasonOf(err))
	// Output:
	// alice [agent] [room:*] 2030-01-01T13:00:00Z
	// invalid_token
}
