package node_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/tether-dev/tether/internal/node"
	"github.com/tether-dev/tether/internal/testkit"
)

// getMessage asks JetStream's API for the first stored channel message, as
// a backend (or an intruder) reaching the listener would.
func getMessage(t *testing.T, nc *nats.Conn) string {
	t.Helper()
	resp, err := nc.Request("$JS.API.STREAM.MSG.GET.TETHER_MESSAGES", []byte(`{"seq":1}`), testkit.Timeout)
	if err != nil {
		t.Fatalf("msg get: %v", err)
	}
	return string(resp.Data)
}

func connect(url string, opts ...nats.Option) (*nats.Conn, error) {
	return nats.Connect(url, append(opts, nats.Timeout(testkit.Timeout), nats.MaxReconnects(0))...)
}

// --nats-listen without configured credentials generates a token, keeps it
// in the data directory (0600, the same after a restart), and refuses
// clients without it.
func TestNATSListenGeneratedToken(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.NATSListen = "127.0.0.1:0"
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := node.New(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if n != nil {
			_ = n.Shutdown(ctx)
		}
	}()
	if _, err := n.Hub.Publish(ctx, "room:1", "backend", json.RawMessage(`"secret"`)); err != nil {
		t.Fatal(err)
	}
	url := n.Backbone.ClientURL()
	if strings.Contains(url, "@") {
		t.Fatalf("ClientURL %q carries credentials", url)
	}

	_, err = connect(url)
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect without credentials: err = %v, want %v", err, nats.ErrAuthorization)
	}
	_, err = connect(url, nats.Token("wrong"))
	if !errors.Is(err, nats.ErrAuthorization) {
		t.Fatalf("connect with a wrong token: err = %v, want %v", err, nats.ErrAuthorization)
	}

	path := filepath.Join(cfg.DataDir, node.NATSTokenFile)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("%s has mode %v, want 0600", path, fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(path)
	tok := strings.TrimSpace(string(raw))
	if len(tok) != 64 {
		t.Fatalf("token %q: want 64 hex digits", tok)
	}
	nc, err := connect(url, nats.Token(tok))
	if err != nil {
		t.Fatalf("connect with the token: %v", err)
	}
	defer nc.Close()
	if got := getMessage(t, nc); !strings.Contains(got, `"subject":"tether.channel.room:1"`) {
		t.Fatalf("msg get with the token: %s", got)
	}
	if u := n.Backbone.ClientURLWithCredentials(); u != strings.Replace(url, "nats://", "nats://"+tok+"@", 1) {
		t.Fatalf("ClientURLWithCredentials = %q", u)
	}

	// A restart on the same data directory keeps the token.
	nc.Close()
	if err := n.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	n = nil
	n2 := testkit.Start(t, cfg, nil)
	nc2, err := connect(n2.Backbone.ClientURL(), nats.Token(tok))
	if err != nil {
		t.Fatalf("connect after restart with the kept token: %v", err)
	}
	nc2.Close()
}

// Configured user and password are required from every client.
func TestNATSListenUserPassword(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.NATSListen = "127.0.0.1:0"
	cfg.NATSUser, cfg.NATSPassword = "backend", "s3cret-pass"
	n := testkit.Start(t, cfg, nil)
	url := n.Backbone.ClientURL()
	for _, opts := range [][]nats.Option{nil, {nats.UserInfo("backend", "wrong")}, {nats.Token("s3cret-pass")}} {
		if _, err := connect(url, opts...); !errors.Is(err, nats.ErrAuthorization) {
			t.Fatalf("err = %v, want %v", err, nats.ErrAuthorization)
		}
	}
	nc, err := connect(url, nats.UserInfo("backend", "s3cret-pass"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := os.Stat(filepath.Join(cfg.DataDir, node.NATSTokenFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("a token file was written although credentials are configured: %v", err)
	}
	// A second node joins with the credentials in its URL.
	cfgB := testkit.Config(t)
	cfgB.NodeName = "b"
	cfgB.NATSURL = n.Backbone.ClientURLWithCredentials()
	testkit.Start(t, cfgB, nil)
}
