package auth

import (
	"slices"
	"time"
)

// Well-known roles. Roles are free-form strings from the token; these are
// the ones Tether itself gives meaning to.
const (
	// RoleAdmin may use the admin HTTP API and every channel.
	RoleAdmin = "admin"
	// RoleAgent marks an AI agent backend, as opposed to an end user.
	RoleAgent = "agent"
)

// Claims is the verified identity carried by a token.
type Claims struct {
	// Subject is the sub claim: the user id. Never empty.
	Subject string
	// Roles is the roles claim (an array of strings).
	Roles []string
	// Channels is the channels claim: channel patterns such as "room:*"
	// the holder may use.
	Channels []string
	// ExpiresAt is the exp claim; always set.
	ExpiresAt time.Time
	// IssuedAt is the iat claim, or zero if the token has none.
	IssuedAt time.Time
}

// HasRole reports whether role is one of c's roles.
func (c *Claims) HasRole(role string) bool {
	return c != nil && slices.Contains(c.Roles, role)
}

// IsAdmin reports whether c has RoleAdmin.
func (c *Claims) IsAdmin() bool { return c.HasRole(RoleAdmin) }
