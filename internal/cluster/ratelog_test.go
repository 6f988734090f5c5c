package cluster

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

// A failing counter warns once per interval, not once per handshake.
func TestRateLog(t *testing.T) {
	var logs bytes.Buffer
	r := rateLog{log: slog.New(slog.NewTextHandler(&logs, nil)), every: time.Hour}
	for range 100 {
		r.Warn("count unavailable", fmt.Errorf("boom"))
	}
	if n := strings.Count(logs.String(), "count unavailable"); n != 1 {
		t.Fatalf("%d warnings logged, want 1:\n%s", n, logs.String())
	}
	r.last = time.Now().Add(-2 * time.Hour)
	r.Warn("count unavailable", fmt.Errorf("boom"))
	if !strings.Contains(logs.String(), "suppressed_since_last=99") {
		t.Fatalf("the second warning does not count the 99 left out:\n%s", logs.String())
	}
}
