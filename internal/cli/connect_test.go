package cli_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/cli"
	"github.com/tether-dev/tether/internal/testkit"
)

// connect returns once every operation it started or watched has sent its
// final event, not after the whole --wait (here a minute).
func TestConnectReturnsWhenOperationsEnd(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.Dev = true // the built-in demo agent, about two seconds a run
	n := testkit.Start(t, cfg, nil)
	admin := testkit.Token(t, "admin", "admin")
	connect := func(input string) []map[string]any {
		t.Helper()
		var out testkit.SyncBuffer
		var errOut bytes.Buffer
		done := make(chan int, 1)
		go func() {
			done <- cli.Main([]string{"connect", n.WS + "/ws/agent-guidance", "--token", admin, "--wait", "1m"}, strings.NewReader(input), &out, &errOut)
		}()
		select {
		case code := <-done:
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut.String())
			}
		case <-time.After(2 * testkit.Timeout):
			t.Cleanup(func() { <-done })
			t.Fatalf("connect still waiting after the operations ended; printed:\n%s", out.String())
		}
		var frames []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			var f map[string]any
			if err := json.Unmarshal([]byte(l), &f); err != nil {
				t.Fatalf("%q: %v", l, err)
			}
			frames = append(frames, f)
		}
		return frames
	}
	frames := connect(`{"type":"start_operation","agent_id":"demo","operation_type":"run","operation_id":"op1","input":{"topic":"hello"}}
{"type":"start_operation","agent_id":"nobody","operation_type":"run"}
`)
	last := frames[len(frames)-1]
	if last["type"] != "operation_completed" || last["operation_id"] != "op1" {
		t.Fatalf("last frame %v", last)
	}
	errs := 0
	for _, f := range frames {
		if f["type"] == "operation_error" {
			errs++
		}
	}
	if frames[0]["type"] != "operation_started" || errs != 1 {
		t.Fatalf("frames %v", frames)
	}
	// Watching an operation that has ended: its final event, then return.
	frames = connect(`{"type":"subscribe_operation","operation_id":"op1"}` + "\n")
	if len(frames) != 2 || frames[0]["type"] != "operation_subscribed" || frames[1]["type"] != "operation_completed" {
		t.Fatalf("frames %v", frames)
	}
	// After its last seq: nothing more comes, so nothing to wait for.
	frames = connect(`{"type":"subscribe_operation","operation_id":"op1","after_seq":` + fmt.Sprint(frames[0]["last_seq"]) + "}\n")
	if len(frames) != 1 || frames[0]["type"] != "operation_subscribed" {
		t.Fatalf("frames %v", frames)
	}
}
