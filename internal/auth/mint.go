package auth

import (
	"errors"
	"fmt"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// MintClaims describes a token for Mint.
type MintClaims struct {
	// Subject becomes sub; required.
	Subject string
	// Roles becomes roles; omitted when empty.
	Roles []string
	// Channels becomes channels; omitted when empty.
	Channels []string
	// TTL sets exp to Now+TTL; it must be positive, as Tether refuses
	// tokens without exp.
	TTL time.Duration
	// Now is the issue time (iat); zero means time.Now().
	Now time.Time
	// Issuer becomes iss when set.
	Issuer string
	// Audience becomes aud when set.
	Audience string
}

// mintedClaims is the JSON shape Mint signs.
type mintedClaims struct {
	jwt.RegisteredClaims
	Roles    []string `json:"roles,omitempty"`
	Channels []string `json:"channels,omitempty"`
}

// Mint returns an HS256 token for c signed with secret, which must be at
// least MinSecretLen bytes. It backs `tether token`, `tether serve --dev`
// and tests; production deployments usually get tokens from their own
// identity provider instead.
func Mint(secret []byte, c MintClaims) (string, error) {
	if len(secret) < MinSecretLen {
		return "", fmt.Errorf("auth: mint: secret is %d bytes; at least %d are required", len(secret), MinSecretLen)
	}
	if c.Subject == "" {
		return "", errors.New("auth: mint: subject is required")
	}
	if c.TTL <= 0 {
		return "", fmt.Errorf("auth: mint: TTL must be positive (got %v)", c.TTL)
	}
	now := c.Now
	if now.IsZero() {
		now = time.Now()
	}
	claims := mintedClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Subject:   c.Subject,
			Issuer:    c.Issuer,
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(now.Add(c.TTL)),
		},
		Roles:    c.Roles,
		Channels: c.Channels,
	}
	if c.Audience != "" {
		claims.Audience = jwt.ClaimStrings{c.Audience}
	}
	token, err := jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(secret)
	if err != nil {
		return "", fmt.Errorf("auth: mint: sign: %w", err)
	}
	return token, nil
}
