package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/protocol"
)

// Connect runs `tether connect`: every line of stdin is sent as a text
// frame and every frame received is printed on its own line. After stdin
// ends it waits up to --wait for replies, then closes with 1000; it stops
// waiting as soon as every agent operation it started or watched has
// ended (see opTracker), and when the server closes.
func Connect(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("tether connect", flag.ContinueOnError)
	fs.SetOutput(stderr)
	token := fs.String("token", os.Getenv("TETHER_TOKEN"), "token, sent as Authorization: Bearer (default $TETHER_TOKEN)")
	wait := fs.Duration("wait", time.Second, "how long to keep reading after stdin ends (less once every operation started or watched has ended)")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "Usage: tether connect --token TOKEN ws://host:port/ws/agent")
		fs.PrintDefaults()
	}
	url, rest := "", args
	if len(rest) > 0 && rest[0] != "" && rest[0][0] != '-' {
		url, rest = rest[0], rest[1:]
	}
	if err := fs.Parse(rest); err != nil {
		return err
	}
	if url == "" {
		url = fs.Arg(0)
	}
	if url == "" {
		fs.Usage()
		return errors.New("a URL is required")
	}
	if *token == "" {
		// Every endpoint needs one; without it the server closes with 4001
		// at the first message, or after --auth-timeout on a silent stdin.
		return fmt.Errorf("no token: pass --token TOKEN or set TETHER_TOKEN (mint one with: %s token --sub alice; serve --dev prints one too)", self())
	}
	hdr := http.Header{}
	hdr.Set("Authorization", "Bearer "+*token)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, 10*time.Second)
	c, resp, err := websocket.Dial(dctx, url, &websocket.DialOptions{HTTPHeader: hdr})
	dcancel()
	if err != nil {
		if resp != nil {
			return fmt.Errorf("connect %s: %s", url, refusal(resp))
		}
		return fmt.Errorf("connect %s: %w", url, err)
	}
	c.SetReadLimit(64 << 20)
	ops := newOpTracker()
	readErr := make(chan error, 1)
	go func() {
		for {
			_, data, err := c.Read(ctx)
			if err != nil {
				readErr <- err
				return
			}
			fmt.Fprintf(stdout, "%s\n", data)
			ops.received(data)
		}
	}()
	sc := bufio.NewScanner(stdin)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		if len(sc.Bytes()) == 0 {
			continue
		}
		ops.sent(sc.Bytes())
		if err := c.Write(ctx, websocket.MessageText, sc.Bytes()); err != nil {
			return closeReport(<-readErr, err)
		}
	}
	timeout := time.After(*wait)
	for !ops.finished() {
		select {
		case err := <-readErr:
			return closeReport(err, nil)
		case <-timeout:
			_ = c.Close(websocket.StatusNormalClosure, "")
			return nil
		case <-ops.changed:
		}
	}
	_ = c.Close(websocket.StatusNormalClosure, "")
	return nil
}

// opTracker follows the agent operations of a connect session, so that it
// ends once every operation it started or watched has ended rather than
// after the whole --wait.
type opTracker struct {
	changed chan struct{} // a frame arrived (buffered: a wake-up, not a count)

	mu        sync.Mutex
	requested int              // start_operation and subscribe_operation sent
	answered  int              // their replies: operation_started, operation_subscribed, operation_error
	ended     map[string]bool  // operation id: its final event arrived
	after     map[string]int64 // operation id: the after_seq of its subscribe_operation
}

func newOpTracker() *opTracker {
	return &opTracker{changed: make(chan struct{}, 1), ended: map[string]bool{}, after: map[string]int64{}}
}

type opFrame struct {
	Type        string `json:"type"`
	OperationID string `json:"operation_id"`
	Status      string `json:"status"`
	AfterSeq    *int64 `json:"after_seq"`
	LastSeq     int64  `json:"last_seq"`
	Operation   *struct {
		OperationID string `json:"operation_id"`
		Status      string `json:"status"`
	} `json:"operation"`
}

// sent counts a line that asks for an operation's events.
func (t *opTracker) sent(line []byte) {
	var f opFrame
	if json.Unmarshal(line, &f) != nil {
		return
	}
	if f.Type == protocol.TypeStartOperation || f.Type == protocol.TypeSubscribeOperation {
		t.mu.Lock()
		t.requested++
		if f.Type == protocol.TypeSubscribeOperation {
			t.after[f.OperationID] = -1
			if f.AfterSeq != nil {
				t.after[f.OperationID] = *f.AfterSeq
			}
		}
		t.mu.Unlock()
	}
}

// received notes a frame from the server.
func (t *opTracker) received(data []byte) {
	var f opFrame
	if json.Unmarshal(data, &f) != nil {
		return
	}
	t.mu.Lock()
	_, known := t.ended[f.OperationID]
	switch f.Type {
	case protocol.TypeOperationStarted:
		if !known { // not a replay to a subscription
			t.answered++
			t.ended[f.OperationID] = false
		}
	case protocol.TypeOperationSubscribed:
		t.answered++
		// An operation that has ended still sends its final event, unless
		// after_seq was already its last seq.
		after, ok := t.after[f.OperationID]
		t.ended[f.OperationID] = !protocol.Live(f.Status) && ok && after >= f.LastSeq
	case protocol.TypeOperationState:
		// Instead of a replay that retention made impossible: the record.
		if op := f.Operation; op != nil && !protocol.Live(op.Status) {
			t.ended[op.OperationID] = true
		}
	case protocol.TypeOperationError:
		t.answered++
	case protocol.TypeOperationCompleted, protocol.TypeOperationFailed, protocol.TypeOperationCancelled:
		t.ended[f.OperationID] = true
	}
	t.mu.Unlock()
	select {
	case t.changed <- struct{}{}:
	default:
	}
}

// finished reports whether operations were asked for, every request was
// answered and every operation has ended.
func (t *opTracker) finished() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.requested == 0 || t.answered < t.requested {
		return false
	}
	for _, ended := range t.ended {
		if !ended {
			return false
		}
	}
	return true
}

// refusal describes an HTTP answer that refused a WebSocket handshake: its
// status and the message of its {"error","message"} body, e.g.
// "401 Unauthorized: invalid_token: token is malformed".
func refusal(resp *http.Response) string {
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct{ Error, Message string }
	if json.Unmarshal(body, &e) == nil && e.Message != "" {
		if e.Error != "" && !strings.Contains(e.Message, e.Error) {
			return resp.Status + ": " + e.Error + ": " + e.Message
		}
		return resp.Status + ": " + e.Message
	}
	return strings.TrimSuffix(resp.Status+": "+strings.TrimSpace(string(body)), ": ")
}

func closeReport(readErr, writeErr error) error {
	var ce websocket.CloseError
	if errors.As(readErr, &ce) {
		if ce.Code == websocket.StatusNormalClosure {
			return nil
		}
		return fmt.Errorf("closed by server: %d %s", ce.Code, ce.Reason)
	}
	if writeErr != nil {
		return writeErr
	}
	return readErr
}
