package channels

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/tether-dev/tether/internal/backbone"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// A hub that closes deletes its consumer: on a shared NATS cluster every
// node restart would otherwise leave one behind for minutes.
func TestHubCloseDeletesConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bb, err := backbone.Start(ctx, backbone.Config{DataDir: t.TempDir(), Name: "hub-test", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
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
