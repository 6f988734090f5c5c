package cli

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"github.com/tether-dev/tether/internal/config"
	"github.com/tether-dev/tether/internal/testkit"
)

// Whatever logs a token, in a message attribute or inside an error, the
// log line carries it redacted.
func TestLoggerRedactsTokens(t *testing.T) {
	tok := testkit.Token(t, "alice")
	for _, format := range []string{"text", "json"} {
		var buf bytes.Buffer
		cfg := config.Defaults()
		cfg.LogFormat = format
		log := newLogger(cfg, &buf)
		log.Warn("request", "url", "/ws/agent?access_token="+tok, "err", fmt.Errorf("dial ws://h/x?jwt=%s: refused", tok))
		if strings.Contains(buf.String(), tok) || strings.Count(buf.String(), "REDACTED") < 2 {
			t.Fatalf("%s log line: %s", format, buf.String())
		}
	}
}
