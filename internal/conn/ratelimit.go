package conn

import (
	"time"
)

// The rate limit is a token bucket per connection (RateLimit messages per
// second, burst RateBurst): a refused message gets an error rate_limited;
// maxRateStrikes refused in a row close with 4008.

// maxRateStrikes is how many messages in a row may be refused as rate
// limited before the connection is closed with 4008.
const maxRateStrikes = 10

// allow applies the token-bucket rate limit.
func (h *handler) allow(c *Conn, now time.Time) bool {
	rate := h.srv.opts.RateLimit
	if rate <= 0 {
		return true
	}
	burst := float64(h.srv.opts.RateBurst)
	if burst < 1 {
		burst = 1
	}
	if c.tokensAt.IsZero() {
		c.tokens = burst
	} else {
		c.tokens += now.Sub(c.tokensAt).Seconds() * rate
		if c.tokens > burst {
			c.tokens = burst
		}
	}
	c.tokensAt = now
	if c.tokens < 1 {
		return false
	}
	c.tokens--
	return true
}
