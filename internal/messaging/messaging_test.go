package messaging_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/nats-io/nats.go"
	"go.uber.org/goleak"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func dial(t *testing.T, n *testkit.Node, tok string) *testkit.Client {
	t.Helper()
	c := testkit.Dial(t, n.WS+"/ws/agent", testkit.Bearer(tok))
	return c
}

// The seed's bidirectional test: any other type is acknowledged with the
// message's content.
func TestAckEchoesContent(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := dial(t, n, testkit.Token(t, "messenger_test"))
	c.Send(map[string]any{"type": "test_message", "id": "m1", "content": "Hello, WebSocket!", "timestamp": "2026-02-01T10:00:00"})
	m := c.Expect("message_ack")
	if m["status"] != "received" || m["content"] != "Hello, WebSocket!" || m["id"] != "m1" {
		t.Fatalf("ack = %v", m)
	}
	// Without content the ack has none.
	c.Send(map[string]any{"type": "test", "id": 2})
	if m := c.Expect("message_ack"); m["content"] != nil || m["id"] != float64(2) {
		t.Fatalf("ack = %v", m)
	}
}

func TestSequentialMessagesAckedInOrder(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := dial(t, n, testkit.Token(t, "sequential_test"))
	for i := 0; i < 5; i++ {
		c.Send(map[string]any{"type": "test", "sequence": i, "id": i, "content": i})
	}
	for i := 0; i < 5; i++ {
		if m := c.Expect("message_ack"); m["id"] != float64(i) || m["content"] != float64(i) {
			t.Fatalf("ack %d = %v", i, m)
		}
	}
}

// Ten goroutines send at once; the acks come back in the order the frames
// went out on the wire, each exactly once.
func TestConcurrentMessagesAckedInOrder(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := dial(t, n, testkit.Token(t, "concurrent_test"))
	var (
		mu    sync.Mutex
		order []float64
		wg    sync.WaitGroup
	)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b, _ := json.Marshal(map[string]any{"type": "concurrent_test", "id": i})
			ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
			defer cancel()
			// The lock records the wire order; the writes still race to it.
			mu.Lock()
			defer mu.Unlock()
			if err := c.C.Write(ctx, websocket.MessageText, b); err != nil {
				t.Errorf("write %d: %v", i, err)
				return
			}
			order = append(order, float64(i))
		}()
	}
	wg.Wait()
	for i, want := range order {
		if m := c.Expect("message_ack"); m["id"] != want || m["status"] != "received" {
			t.Fatalf("ack %d = %v, want id %v", i, m, want)
		}
	}
	if len(order) != 10 {
		t.Fatalf("sent %d", len(order))
	}
}

func TestLargeMessageAcknowledged(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := dial(t, n, testkit.Token(t, "large_msg_test"))
	c.Send(map[string]any{"type": "large_message", "data": strings.Repeat("x", 100_000), "content": strings.Repeat("y", 100_000)})
	m := c.Expect("message_ack")
	if m["status"] != "received" || len(m["content"].(string)) != 100_000 {
		t.Fatalf("ack status %v content length %d", m["status"], len(fmt.Sprint(m["content"])))
	}
}

// Backends receive what users send on tether.inbox.<user>.
func TestInboxForwarding(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	sub, err := n.Backbone.NC.SubscribeSync("tether.inbox.>")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	c := dial(t, n, testkit.Token(t, "alice@example.com"))
	c.Send(map[string]any{"type": "chat", "id": "c1", "content": "hi"})
	c.Expect("message_ack")
	msg, err := sub.NextMsg(testkit.Timeout)
	if err != nil {
		t.Fatal(err)
	}
	if msg.Subject != "tether.inbox.alice@example%2Ecom" {
		t.Fatalf("subject %q", msg.Subject)
	}
	var in struct {
		UserID  string         `json:"user_id"`
		Type    string         `json:"type"`
		Node    string         `json:"node"`
		ID      string         `json:"id"`
		Message map[string]any `json:"message"`
	}
	if err := json.Unmarshal(msg.Data, &in); err != nil {
		t.Fatal(err)
	}
	if in.UserID != "alice@example.com" || in.Type != "chat" || in.ID != "c1" || in.Message["content"] != "hi" || in.Node != "test" {
		t.Fatalf("inbox message %s", msg.Data)
	}
}

// A publish reaches every subscriber on every connection, with the sender
// and a seq; channel permissions come from the token.
func TestChannelsAcrossConnections(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	aliceTok := testkit.Mint(t, auth.MintClaims{Subject: "alice", Channels: []string{"room:*"}, TTL: time.Hour})
	bobTok := testkit.Mint(t, auth.MintClaims{Subject: "bob", Channels: []string{"room:1"}, TTL: time.Hour})
	alice, bob := dial(t, n, aliceTok), dial(t, n, bobTok)
	for _, c := range []*testkit.Client{alice, bob} {
		c.Send(map[string]any{"type": "subscribe", "channel": "room:1", "id": "s"})
		if m := c.Expect("subscribed"); m["channel"] != "room:1" || m["id"] != "s" {
			t.Fatalf("subscribed = %v", m)
		}
	}
	alice.Send(map[string]any{"type": "publish", "channel": "room:1", "data": map[string]any{"text": "hello"}, "id": "p"})
	var seq float64
	for _, c := range []*testkit.Client{alice, bob} {
		// alice gets her published reply and the message, in either order.
		var msg map[string]any
		for msg == nil {
			m := c.Read()
			switch m["type"] {
			case "published":
				seq = m["seq"].(float64)
			case "message":
				msg = m
			default:
				t.Fatalf("unexpected %v", m)
			}
		}
		if msg["channel"] != "room:1" || msg["from"] != "alice" || msg["data"].(map[string]any)["text"] != "hello" || msg["seq"].(float64) < 1 {
			t.Fatalf("message = %v", msg)
		}
	}
	if seq < 1 {
		alice.Expect("published")
	}

	// bob may not use room:2, nor alice's personal channel; his own is fine.
	bob.Send(map[string]any{"type": "subscribe", "channel": "room:2", "id": 1})
	if m := bob.Expect("error"); m["code"] != "forbidden" || m["id"] != float64(1) {
		t.Fatalf("room:2 = %v", m)
	}
	bob.Send(map[string]any{"type": "publish", "channel": "user:alice", "data": 1, "id": 2})
	if m := bob.Expect("error"); m["code"] != "forbidden" {
		t.Fatalf("user:alice = %v", m)
	}
	bob.Send(map[string]any{"type": "subscribe", "channel": "user:bob", "id": 3})
	bob.Expect("subscribed")
	bob.Send(map[string]any{"type": "subscribe", "channel": "bad channel", "id": 4})
	if m := bob.Expect("error"); m["code"] != "invalid_channel" {
		t.Fatalf("bad channel = %v", m)
	}

	// After unsubscribing, bob no longer receives room:1; the next frame he
	// sees is the pong that follows.
	bob.Send(map[string]any{"type": "unsubscribe", "channel": "room:1", "id": 5})
	bob.Expect("unsubscribed")
	alice.Send(map[string]any{"type": "publish", "channel": "room:1", "data": 2, "id": "p2"})
	for got := 0; got < 2; got++ {
		if m := alice.Read(); m["type"] != "published" && m["type"] != "message" {
			t.Fatalf("alice got %v", m)
		}
	}
	bob.Send(map[string]any{"type": "ping", "id": 6})
	if m := bob.Read(); m["type"] != "pong" {
		t.Fatalf("bob got %v after unsubscribing", m)
	}
}

// Backends push without a WebSocket, with an admin token.
func TestPublishAPI(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	bob := dial(t, n, testkit.Token(t, "bob"))
	bob.Send(map[string]any{"type": "subscribe", "channel": "user:bob"})
	bob.Expect("subscribed")
	admin := testkit.Token(t, "backend", "admin")

	status, body := testkit.PostJSON(t, n.HTTP+"/api/publish", admin, map[string]any{"user": "bob", "data": map[string]any{"note": "build finished"}})
	if status != 200 || body["channel"] != "user:bob" || body["seq"].(float64) < 1 {
		t.Fatalf("publish: %d %v", status, body)
	}
	m := bob.Expect("message")
	if m["from"] != "backend" || m["data"].(map[string]any)["note"] != "build finished" || m["seq"] != body["seq"] {
		t.Fatalf("message = %v", m)
	}

	for _, tc := range []struct {
		tok    string
		body   any
		status int
		code   string
	}{
		{"", map[string]any{"channel": "x", "data": 1}, 401, "missing_token"},
		{testkit.Token(t, "bob"), map[string]any{"channel": "x", "data": 1}, 403, "forbidden"},
		{admin, `{"channel":`, 400, "bad_request"},
		{admin, map[string]any{"data": 1}, 400, "bad_request"},
		{admin, map[string]any{"channel": "a", "user": "b"}, 400, "bad_request"},
		{admin, map[string]any{"channel": "has space"}, 400, "invalid_channel"},
		{admin, `{"channel":"big","data":"` + strings.Repeat("x", 2<<20) + `"}`, 413, "too_large"},
	} {
		status, body := testkit.PostJSON(t, n.HTTP+"/api/publish", tc.tok, tc.body)
		if status != tc.status || body["error"] != tc.code {
			t.Errorf("%.40v → %d %v, want %d %s", tc.body, status, body, tc.status, tc.code)
		}
	}
}

// A client that stops reading is closed 4008 once its queue is full, and a
// second subscriber of the same channel keeps receiving everything.
func TestSlowConsumerClosed(t *testing.T) {
	cfg := testkit.Config(t)
	cfg.SendQueue = 16
	// Long enough that the send queue overflows (4008, what is tested)
	// before a write blocked on the slow client's full socket times out
	// (which tears the connection down mid-frame), however long the
	// publishes take on a busy machine.
	cfg.WriteTimeout = time.Minute
	n := testkit.Start(t, cfg, nil)
	tok := testkit.Token(t, "reader", "admin")
	slow, fast := dial(t, n, tok), dial(t, n, tok)
	for _, c := range []*testkit.Client{slow, fast} {
		c.Send(map[string]any{"type": "subscribe", "channel": "firehose"})
		c.Expect("subscribed")
	}
	payload := strings.Repeat("z", 64<<10)
	const total = 200 // 12.8 MB: far more than the socket buffers hold
	received := make(chan int, 1)
	go func() {
		got := 0
		for got < total {
			_, b, err := fast.ReadRaw()
			if err != nil {
				break
			}
			if strings.Contains(string(b[:40]), `"type":"message"`) {
				got++
			}
		}
		received <- got
	}()
	admin := testkit.Token(t, "backend", "admin")
	for i := 0; i < total; i++ {
		if status, body := testkit.PostJSON(t, n.HTTP+"/api/publish", admin, map[string]any{"channel": "firehose", "data": payload}); status != 200 {
			t.Fatalf("publish %d: %d %v", i, status, body)
		}
	}
	select {
	case got := <-received:
		if got != total {
			t.Fatalf("the reading subscriber got %d of %d messages", got, total)
		}
	case <-time.After(testkit.Timeout):
		t.Fatal("the reading subscriber was held up")
	}
	n.WaitMetrics(t, "the slow consumer drop", `tether_send_queue_drops_total{endpoint="agent"} 1`)
	// Now the slow client reads: what was in flight, then close 4008.
	if reason := slow.ExpectClose(4008); reason != "slow_consumer" {
		t.Fatalf("reason %q", reason)
	}
}

// Subscriptions end with their connection.
func TestSubscriptionsEndWithConnection(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := dial(t, n, testkit.Token(t, "alice"))
	c.Send(map[string]any{"type": "subscribe", "channel": "user:alice"})
	c.Expect("subscribed")
	if got := n.Hub.Subscribers("user:alice"); got != 1 {
		t.Fatalf("subscribers = %d", got)
	}
	c.C.Close(websocket.StatusNormalClosure, "")
	testkit.Eventually(t, "unsubscribed on close", func() bool { return n.Hub.Subscribers("user:alice") == 0 })
}

// Messages published through NATS directly by a backend on another node
// reach subscribers too: the hub follows the stream, not its own publishes.
func TestPublishFromNATSReachesSubscribers(t *testing.T) {
	n := testkit.Start(t, nil, nil)
	c := dial(t, n, testkit.Token(t, "alice"))
	c.Send(map[string]any{"type": "subscribe", "channel": "user:alice"})
	c.Expect("subscribed")
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	if _, err := n.Hub.Publish(ctx, "user:alice", "other-node", json.RawMessage(`{"k":"v"}`)); err != nil {
		t.Fatal(err)
	}
	if m := c.Expect("message"); m["from"] != "other-node" {
		t.Fatalf("message = %v", m)
	}
	_ = nats.ErrTimeout
}
