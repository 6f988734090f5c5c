package cli_test

import (
	"bytes"
	"encoding/json"
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/cli"
	"github.com/tether-dev/tether/internal/testkit"
)

// The README's `tether connect` example, run against a real node: the
// replies are printed exactly as the README's first block shows, in that
// order, and the only other frame is the delivery of its second block,
// which may come anywhere after `subscribed` (as the README says).
func TestREADMEConnectExample(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)\\./tether connect ws://localhost:8000/ws/agent --token \"\\$TOKEN\" <<'EOF2'\n(.*?)EOF2\n```\n(.*?)```json\n(.*?)```\n(.*?)```json\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README: no connect example followed by a block of replies and a block of deliveries")
	}
	input, wantReplies, wantDeliveries := string(m[1]), frames(t, string(m[3])), frames(t, string(m[5]))

	n := testkit.Start(t, nil, nil)
	tok := testkit.Mint(t, auth.MintClaims{Subject: "alice", Channels: []string{"room:*"}, TTL: time.Hour})
	for run := range 3 {
		var out, errOut bytes.Buffer
		if code := cli.Main([]string{"connect", n.WS + "/ws/agent", "--token", tok}, strings.NewReader(input), &out, &errOut); code != 0 {
			t.Fatalf("run %d: exit %d: %s", run, code, errOut.String())
		}
		var replies, deliveries []map[string]any
		subscribed := false
		for _, f := range frames(t, out.String()) {
			if _, ok := f["id"]; ok {
				replies = append(replies, f)
				subscribed = subscribed || f["type"] == "subscribed"
				continue
			}
			if !subscribed {
				t.Errorf("run %d: %v before subscribed", run, f)
			}
			deliveries = append(deliveries, f)
		}
		if !reflect.DeepEqual(replies, wantReplies) {
			t.Errorf("run %d: replies\n%v\nREADME shows\n%v", run, replies, wantReplies)
		}
		if !reflect.DeepEqual(deliveries, wantDeliveries) {
			t.Errorf("run %d: deliveries\n%v\nREADME shows\n%v", run, deliveries, wantDeliveries)
		}
	}
}

// frames parses one JSON object a line, with the values that change from
// run to run (server_time, seq) blanked.
func frames(t *testing.T, s string) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(s), "\n") {
		var f map[string]any
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			t.Fatalf("not a JSON frame: %q: %v", l, err)
		}
		for _, k := range []string{"server_time", "seq"} {
			if _, ok := f[k]; ok {
				f[k] = "…"
			}
		}
		out = append(out, f)
	}
	return out
}
