package node_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/node"
	"github.com/tether-dev/tether/internal/testkit"
)

// A node whose data directory has less free space than the storage reserve
// starts anyway, says so (log, /readyz, tether_storage_full), refuses every
// write at once with storage_full and stores nothing, and keeps serving
// reads.
func TestStorageFull(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.Dev = true // the built-in demo agent, to start operations with
	admin := testkit.Token(t, "admin", "admin")

	// First a node with room, which stores a milestone.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n1, err := node.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h1 := httptest.NewServer(n1.Handler())
	defer h1.Close()
	if code, body := testkit.PostJSON(t, h1.URL+"/api/milestones", admin, map[string]any{"id": "kept", "command": []string{"true"}}); code != http.StatusCreated {
		t.Fatalf("create with room: %d %v", code, body)
	}
	if err := n1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// Restarted with a reserve no disk has: full from the start.
	cfg.StorageReserve = 1 << 60
	var logs testkit.SyncBuffer
	n := testkit.Start(t, cfg, slog.New(slog.NewTextHandler(&logs, nil)))
	if !strings.Contains(logs.String(), "storage full: writes fail with storage_full until space is freed") {
		t.Fatalf("the log does not say the storage is full:\n%s", logs.String())
	}
	code, ready := testkit.Do(t, http.MethodGet, n.HTTP+"/readyz", "", nil)
	if code != http.StatusOK || ready["status"] != "storage_full" || ready["storage"] != "full" ||
		!strings.Contains(ready["reason"].(string), "below the storage reserve of 1073741824.0GiB") {
		t.Fatalf("readyz: %d %v", code, ready)
	}
	if m := n.Metrics(t); !strings.Contains(m, "\ntether_storage_full 1\n") {
		t.Fatalf("metrics lack tether_storage_full 1")
	}

	// Writes fail at once, with the documented codes.
	began := time.Now()
	code, body := testkit.PostJSON(t, n.HTTP+"/api/publish", admin, map[string]any{"channel": "room:1", "data": 1})
	if code != http.StatusInsufficientStorage || body["error"] != "storage_full" {
		t.Fatalf("publish: %d %v", code, body)
	}
	code, body = testkit.PostJSON(t, n.HTTP+"/api/milestones", admin, map[string]any{"id": "lost", "command": []string{"true"}})
	if code != http.StatusInsufficientStorage || body["error"] != "storage_full" {
		t.Fatalf("milestone create: %d %v", code, body)
	}
	code, body = testkit.PostJSON(t, n.HTTP+"/api/operations", admin, map[string]any{"agent_id": "demo", "operation_type": "run"})
	if code != http.StatusInsufficientStorage || body["error"] != "storage_full" {
		t.Fatalf("operation start: %d %v", code, body)
	}
	c := testkit.Dial(t, n.WS+"/ws/agent", testkit.Bearer(admin))
	c.Send(map[string]any{"type": "subscribe", "channel": "room:1", "id": 1})
	c.Expect("subscribed")
	c.Send(map[string]any{"type": "publish", "channel": "room:1", "data": 1, "id": 2})
	if e := c.Expect("error"); e["code"] != "storage_full" || e["id"] != float64(2) {
		t.Fatalf("ws publish: %v", e)
	}
	if d := time.Since(began); d > 3*time.Second {
		t.Fatalf("four refused writes took %v: they must fail fast", d)
	}

	// Nothing was stored; what was stored before can be read.
	code, body = testkit.Do(t, http.MethodGet, n.HTTP+"/api/milestones", admin, nil)
	if ms, _ := body["milestones"].([]any); code != http.StatusOK || len(ms) != 1 || ms[0].(map[string]any)["id"] != "kept" {
		t.Fatalf("list: %d %v", code, body)
	}
	if code, body = testkit.Do(t, http.MethodGet, n.HTTP+"/api/milestones/kept", admin, nil); code != http.StatusOK || body["id"] != "kept" {
		t.Fatalf("get: %d %v", code, body)
	}
}

// mountTmpfs mounts a tmpfs of size bytes on a new directory, or skips the
// test where mounting is not permitted (not root, or no mount namespace).
func mountTmpfs(t *testing.T, size int) string {
	t.Helper()
	dir := t.TempDir()
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		t.Skipf("a real full disk needs a small tmpfs, and mounting one is not permitted here: %v %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file under dir until the file system is full.
func fill(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 64<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill: %v", err)
			}
			return path
		}
	}
}

// On a really full disk: a node restarts (JetStream's default store limit,
// three quarters of the space free at start, refused to recover the
// streams: "insufficient storage resources available"), refuses writes with
// storage_full and serves reads; once space is freed it stores again.
func TestStorageFullDisk(t *testing.T) {
	dir := mountTmpfs(t, 32<<20)
	cfg := testkit.Config(t)
	cfg.DataDir = dir
	cfg.HistoryMaxBytes, cfg.OperationHistoryMaxBytes = 4<<20, 4<<20
	cfg.StorageReserve = 4 << 20
	admin := testkit.Token(t, "admin", "admin")

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n1, err := node.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h1 := httptest.NewServer(n1.Handler())
	if code, body := testkit.PostJSON(t, h1.URL+"/api/milestones", admin, map[string]any{"id": "kept", "command": []string{"true"}}); code != http.StatusCreated {
		t.Fatalf("create with room: %d %v", code, body)
	}
	h1.Close()
	if err := n1.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	filler := fill(t, dir)

	n := testkit.Start(t, cfg, nil)
	code, ready := testkit.Do(t, http.MethodGet, n.HTTP+"/readyz", "", nil)
	if code != http.StatusOK || ready["storage"] != "full" {
		t.Fatalf("readyz on a full disk: %d %v", code, ready)
	}
	began := time.Now()
	if code, body := testkit.PostJSON(t, n.HTTP+"/api/publish", admin, map[string]any{"channel": "room:1", "data": 1}); code != http.StatusInsufficientStorage || body["error"] != "storage_full" {
		t.Fatalf("publish on a full disk: %d %v", code, body)
	}
	if code, body := testkit.PostJSON(t, n.HTTP+"/api/milestones", admin, map[string]any{"id": "lost", "command": []string{"true"}}); code != http.StatusInsufficientStorage || body["error"] != "storage_full" {
		t.Fatalf("milestone create on a full disk: %d %v", code, body)
	}
	if d := time.Since(began); d > 2*time.Second {
		t.Fatalf("refused writes took %v", d)
	}
	if code, body := testkit.Do(t, http.MethodGet, n.HTTP+"/api/milestones/kept", admin, nil); code != http.StatusOK || body["id"] != "kept" {
		t.Fatalf("read on a full disk: %d %v", code, body)
	}
	if code, _ := testkit.Do(t, http.MethodGet, n.HTTP+"/api/milestones/lost", admin, nil); code != http.StatusNotFound {
		t.Fatalf("the refused milestone exists: %d", code)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "storage ok after freeing space", func() bool {
		_, ready := testkit.Do(t, http.MethodGet, n.HTTP+"/readyz", "", nil)
		return ready["storage"] == "ok" && ready["status"] == "ready"
	})
	if m := n.Metrics(t); !strings.Contains(m, "\ntether_storage_full 0\n") {
		t.Fatalf("metrics lack tether_storage_full 0")
	}
	if code, body := testkit.PostJSON(t, n.HTTP+"/api/publish", admin, map[string]any{"channel": "room:1", "data": 1}); code != http.StatusOK {
		t.Fatalf("publish after freeing space: %d %v", code, body)
	}
}
