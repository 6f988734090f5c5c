package milestones_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/milestones"
	"github.com/tether-dev/tether/internal/testkit"
)

func TestMilestoneREST(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	base := n.HTTP + "/api/milestones"

	// Only admins define milestones: a milestone runs a command.
	if status, body := testkit.PostJSON(t, base, alice(t), map[string]any{"name": "x"}); status != 403 || body["error"] != "forbidden" {
		t.Fatalf("non-admin create: %d %v", status, body)
	}
	if status, body := testkit.PostJSON(t, base, "", map[string]any{"name": "x"}); status != 401 {
		t.Fatalf("anonymous create: %d %v", status, body)
	}
	if status, body := testkit.PostJSON(t, base, admin(t), map[string]any{"id": "-x"}); status != 400 || body["error"] != "invalid_milestone" {
		t.Fatalf("bad id: %d %v", status, body)
	}
	status, m := testkit.PostJSON(t, base, admin(t), map[string]any{"name": "default command", "owner": "alice"})
	if status != 201 || m["status"] != "pending" || m["owner"] != "alice" || m["command"].([]any)[0] != "/bin/sh" || !strings.HasPrefix(m["id"].(string), "ms-") {
		t.Fatalf("create: %d %v", status, m)
	}
	id := m["id"].(string)
	if status, body := testkit.PostJSON(t, base, admin(t), map[string]any{"id": id}); status != 409 || body["error"] != "milestone_exists" {
		t.Fatalf("duplicate: %d %v", status, body)
	}
	create(t, n, "ops-own", []string{"sleep", "100"})
	_, _ = testkit.PostJSON(t, base, admin(t), map[string]any{"id": "admins", "command": []string{"true"}})

	// alice sees her own; admins see all; others see nothing of hers.
	_, list := testkit.Do(t, http.MethodGet, base, alice(t), nil)
	if got := len(list["milestones"].([]any)); got != 2 {
		t.Fatalf("alice lists %d milestones: %v", got, list)
	}
	_, list = testkit.Do(t, http.MethodGet, base, admin(t), nil)
	if got := len(list["milestones"].([]any)); got != 3 {
		t.Fatalf("admin lists %d", got)
	}
	// By status: all three are pending until a client attaches.
	for _, tc := range []struct {
		query string
		want  int
	}{{"pending", 3}, {"live", 3}, {"running,finished", 0}} {
		if status, list := testkit.Do(t, http.MethodGet, base+"?status="+tc.query, admin(t), nil); status != 200 || len(list["milestones"].([]any)) != tc.want {
			t.Fatalf("status=%s: %d %v, want %d milestones", tc.query, status, list, tc.want)
		}
	}
	if status, body := testkit.Do(t, http.MethodGet, base+"?status=done", admin(t), nil); status != 400 || body["error"] != "bad_request" ||
		body["message"] != `unknown status "done": one of pending, running, finished, live` {
		t.Fatalf("status=done: %d %v", status, body)
	}
	if status, _ := testkit.Do(t, http.MethodGet, base+"/"+id, testkit.Token(t, "mallory"), nil); status != 403 {
		t.Fatalf("mallory get: %d", status)
	}
	if status, _ := testkit.Do(t, http.MethodGet, base+"/nope", alice(t), nil); status != 404 {
		t.Fatalf("missing: %d", status)
	}

	// start → running with a pid; finish → finished; start again → 409.
	status, m = testkit.PostJSON(t, base+"/ops-own/start", alice(t), nil)
	if status != 200 || m["status"] != "running" || m["pid"].(float64) <= 0 || m["node"] != "test" {
		t.Fatalf("start: %d %v", status, m)
	}
	status, m = testkit.PostJSON(t, base+"/ops-own/finish", alice(t), nil)
	if status != 200 || m["status"] != "finished" || m["reason"] != "finished" || m["signal"] == "" {
		t.Fatalf("finish: %d %v", status, m)
	}
	if status, body := testkit.PostJSON(t, base+"/ops-own/start", alice(t), nil); status != 409 || body["error"] != "milestone_finished" {
		t.Fatalf("restart finished: %d %v", status, body)
	}

	// The recording is an asciicast v2 file.
	req, _ := http.NewRequest(http.MethodGet, base+"/ops-own/recording", nil)
	req.Header.Set("Authorization", "Bearer "+alice(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	header, _ := bufio.NewReader(resp.Body).ReadString('\n')
	resp.Body.Close()
	var h map[string]any
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/x-asciicast" || json.Unmarshal([]byte(header), &h) != nil || h["version"] != float64(2) || h["width"] != float64(80) {
		t.Fatalf("recording: %d %s %q", resp.StatusCode, resp.Header.Get("Content-Type"), header)
	}

	// delete → 204, then gone.
	if status, _ := testkit.Do(t, http.MethodDelete, base+"/ops-own", alice(t), nil); status != 204 {
		t.Fatalf("delete: %d", status)
	}
	if status, _ := testkit.Do(t, http.MethodGet, base+"/ops-own", alice(t), nil); status != 404 {
		t.Fatalf("after delete: %d", status)
	}
}

// The recording holds what the program printed, playable by asciinema.
func TestRecordingContents(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	create(t, n, "rec", []string{"sh", "-c", "printf 'h\\303\\251llo\\n'"})
	c := attach(t, n, "rec", alice(t), "since=0")
	c.status()
	c.until("the output", func(o string) bool { return o == "héllo\r\n" })
	c.Expect("exit")
	c.ExpectClose(websocket.StatusNormalClosure)
	testkit.Eventually(t, "finished", func() bool { return n.Milestones.Session("rec") == nil })
	req, _ := http.NewRequest(http.MethodGet, n.HTTP+"/api/milestones/rec/recording", nil)
	req.Header.Set("Authorization", "Bearer "+alice(t))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	lines := strings.Split(strings.TrimSpace(string(body)), "\n")
	var out strings.Builder
	for _, l := range lines[1:] {
		var ev []any
		if err := json.Unmarshal([]byte(l), &ev); err != nil {
			t.Fatalf("line %q: %v", l, err)
		}
		if ev[1] == "o" {
			out.WriteString(ev[2].(string))
		}
	}
	if out.String() != "héllo\r\n" {
		t.Fatalf("recorded %q", out.String())
	}
}

// After a crash, milestones that were running on this node are finished
// with reason interrupted; a graceful shutdown records the same.
func TestRestartInterruptsRunningMilestones(t *testing.T) {
	cfg := testkit.Config(t)
	n := testkit.Start(t, cfg, nil)
	create(t, n, "long", []string{"sleep", "100"})
	create(t, n, "crashed", []string{"sleep", "100"})
	if status, m := testkit.PostJSON(t, n.HTTP+"/api/milestones/long/start", alice(t), nil); status != 200 {
		t.Fatalf("start: %d %v", status, m)
	}
	// Simulate a crash's leftovers: a record that says running on this
	// node with no process behind it.
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	if _, err := n.Milestones.Store().Update(ctx, "crashed", func(m *milestones.Milestone) bool {
		now := time.Now()
		m.Status, m.Node, m.PID, m.StartedAt = milestones.StatusRunning, "test", 999999, &now
		return true
	}); err != nil {
		t.Fatal(err)
	}
	sctx, scancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer scancel()
	if err := n.Shutdown(sctx); err != nil {
		t.Fatal(err)
	}
	n.Server.Close()

	n2 := testkit.Start(t, cfg, nil)
	for _, id := range []string{"long", "crashed"} {
		_, m := testkit.Do(t, http.MethodGet, n2.HTTP+"/api/milestones/"+id, alice(t), nil)
		if m["status"] != "finished" || m["reason"] != "interrupted" {
			t.Fatalf("%s after restart: %v", id, m)
		}
	}
}

// A session nobody is attached to ends after --terminal-detach-timeout;
// one with a client attached does not.
func TestDetachTimeout(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.TerminalDetachTimeout = 300 * time.Millisecond
	n := testkit.Start(t, cfg, nil)
	create(t, n, "kept", []string{"sleep", "100"})
	create(t, n, "left", []string{"sleep", "100"})
	kept := attach(t, n, "kept", alice(t), "")
	kept.status()
	left := attach(t, n, "left", alice(t), "")
	left.status()
	start := time.Now()
	left.C.Close(websocket.StatusNormalClosure, "bye")
	testkit.Eventually(t, "the detached session to end", func() bool {
		_, m := testkit.Do(t, http.MethodGet, n.HTTP+"/api/milestones/left", alice(t), nil)
		return m["status"] == "finished" && m["reason"] == "detach_timeout"
	})
	if d := time.Since(start); d < 250*time.Millisecond {
		t.Fatalf("ended after %v", d)
	}
	if n.Milestones.Session("kept") == nil {
		t.Fatal("the attached session ended too")
	}
}

// A recording is served and deleted through any node of a cluster: the
// node that did not run the program fetches it from the one that did.
func TestRecordingFromAnotherNode(t *testing.T) {
	a, b := testkit.StartTwo(t, testkit.Config(t), testkit.Config(t))

	// More than one chunk of recording (seq prints ~340 KB).
	create(t, a, "far", []string{"seq", "1", "60000"})
	if status, body := testkit.PostJSON(t, a.HTTP+"/api/milestones/far/start", admin(t), nil); status != http.StatusOK {
		t.Fatalf("start: %d %v", status, body)
	}
	testkit.Eventually(t, "finished", func() bool {
		_, m := testkit.Do(t, http.MethodGet, b.HTTP+"/api/milestones/far", alice(t), nil)
		return m["status"] == "finished" && m["node"] == "node-a"
	})
	get := func(n *testkit.Node, id string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, n.HTTP+"/api/milestones/"+id+"/recording", nil)
		req.Header.Set("Authorization", "Bearer "+alice(t))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		return resp, body
	}
	respA, local := get(a, "far")
	respB, relayed := get(b, "far")
	if respA.StatusCode != 200 || respB.StatusCode != 200 || len(local) < 300<<10 {
		t.Fatalf("statuses %d, %d; %d bytes", respA.StatusCode, respB.StatusCode, len(local))
	}
	if !bytes.Equal(local, relayed) {
		t.Fatalf("relayed recording differs: %d bytes, local %d", len(relayed), len(local))
	}
	if ct, cl := respB.Header.Get("Content-Type"), respB.Header.Get("Content-Length"); ct != "application/x-asciicast" || cl != strconv.Itoa(len(local)) {
		t.Fatalf("relayed headers: %q, %q", ct, cl)
	}

	// Deleting through node B removes the file on node A.
	if status, _ := testkit.Do(t, http.MethodDelete, b.HTTP+"/api/milestones/far", admin(t), nil); status != http.StatusNoContent {
		t.Fatalf("delete: %d", status)
	}
	if _, err := os.Stat(a.Milestones.RecordingPath("far")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("recording still on node A: %v", err)
	}

	// A milestone whose node is gone: 503 node_down, not a silent 404.
	create(t, a, "ghost", []string{"true"})
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	st, err := milestones.OpenStore(ctx, a.Backbone)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.Update(ctx, "ghost", func(m *milestones.Milestone) bool {
		m.Status, m.Node = milestones.StatusFinished, "node-gone"
		return true
	}); err != nil {
		t.Fatal(err)
	}
	resp, body := get(b, "ghost")
	var e map[string]any
	_ = json.Unmarshal(body, &e)
	if resp.StatusCode != http.StatusServiceUnavailable || e["error"] != "node_down" {
		t.Fatalf("recording on a gone node: %d %s", resp.StatusCode, body)
	}
	// And a node that has none says so.
	create(t, b, "never", []string{"true"})
	if status, e := testkit.Do(t, http.MethodGet, a.HTTP+"/api/milestones/never/recording", alice(t), nil); status != http.StatusNotFound || e["error"] != "not_found" {
		t.Fatalf("no recording: %d %v", status, e)
	}
}
