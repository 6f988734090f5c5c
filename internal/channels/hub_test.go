package channels

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tether-dev/tether/internal/backbone"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// startBackbone starts an embedded NATS server for a test, and a context
// bounding the test.
func startBackbone(t *testing.T) (context.Context, *backbone.Backbone) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	bb, err := backbone.Start(ctx, backbone.Config{DataDir: t.TempDir(), Name: "hub-test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(bb.Close)
	return ctx, bb
}

// A hub that closes deletes its consumer: on a shared NATS cluster every
// node restart would otherwise leave one behind for minutes.
func TestHubCloseDeletesConsumer(t *testing.T) {
	ctx, bb := startBackbone(t)
	consumers := func() int {
		st, err := bb.JS.Stream(ctx, StreamName)
		if err != nil {
			t.Fatal(err)
		}
		info, err := st.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return info.State.Consumers
	}
	h, err := NewHub(ctx, bb, HubConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if n := consumers(); n != 1 {
		t.Fatalf("%d consumers with the hub running, want 1", n)
	}
	h.Close()
	if n := consumers(); n != 0 {
		t.Fatalf("%d consumers after Close, want 0", n)
	}
}

// recorder is a subscriber that passes each frame on.
type recorder chan []byte

func (r recorder) Deliver(msg []byte) {
	select {
	case r <- msg:
	default:
		panic("recorder full")
	}
}

// A hub whose consumer is deleted under it (as when the NATS server holding
// it is lost) recreates it from the next message at once: nothing lost,
// nothing delivered twice, including what was published meanwhile.
func TestHubRecreatesLostConsumer(t *testing.T) {
	ctx, bb := startBackbone(t)
	h, err := NewHub(ctx, bb, HubConfig{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	rec := make(recorder, 100)
	h.Subscribe("room:a", rec)
	expect := func(i int) {
		t.Helper()
		select {
		case b := <-rec:
			if want := fmt.Sprintf(`"data":%d,`, i); !strings.Contains(string(b), want) {
				t.Fatalf("got %s, want message %d", b, i)
			}
		case <-ctx.Done():
			t.Fatalf("message %d never delivered", i)
		}
	}
	publish := func(i int) {
		t.Helper()
		if _, err := h.Publish(ctx, "room:a", "alice", json.RawMessage(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
	}
	publish(0)
	expect(0)
	for lost := range 3 {
		h.mu.RLock()
		name := h.cons.CachedInfo().Name
		h.mu.RUnlock()
		if err := bb.JS.DeleteConsumer(ctx, StreamName, name); err != nil {
			t.Fatal(err)
		}
		publish(1 + 2*lost)
		publish(2 + 2*lost)
		start := time.Now()
		expect(1 + 2*lost)
		expect(2 + 2*lost)
		// The server is up, so the first attempt succeeds (the library's
		// would too; its later ones, when the stream has no leader, come
		// 1, 2, 4 s apart: TestNATSServerLossDuringWrites covers that).
		if d := time.Since(start); d > 2*time.Second {
			t.Fatalf("consumer lost: deliveries resumed only after %v", d)
		}
	}
	select {
	case b := <-rec:
		t.Fatalf("delivered again: %s", b)
	default:
	}
}
