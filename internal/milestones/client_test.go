package milestones_test

import (
	"encoding/base64"
	"fmt"
	"strings"
	"testing"

	"github.com/tether-dev/tether/internal/terminal/screen"
	"github.com/tether-dev/tether/internal/terminal/screen/oracle"
	"github.com/tether-dev/tether/internal/testkit"
)

// recorder is a terminal client that follows the documented protocol
// (docs/protocol.md, "What a client does with a replay") and records what
// it receives as the steps a terminal emulator takes: a fresh terminal at
// the size last told for a replay with start, a resize for a size message
// when it follows the server's size (followSize; otherwise it keeps its
// own, as the web console does), and the bytes of replays and output. It
// plays them into a screen model (m) as they come, and the xterm.js oracle
// replays them (judge).
type recorder struct {
	*term
	cols, rows int
	follow     bool
	ops        []oracle.Op
	m          *screen.Model
	replays    int
	// inReplay is set from a replay with start until the first output
	// after it: only then is the whole snapshot (which may come in
	// several replay messages) known to have arrived.
	inReplay bool
}

// record attaches a client to terminal id and reads its status.
func record(t *testing.T, n *testkit.Node, id, query string, follow bool) *recorder {
	t.Helper()
	r := &recorder{term: attach(t, n, id, alice(t), query), follow: follow}
	st := r.Expect("status")
	r.cols, r.rows = int(st["cols"].(float64)), int(st["rows"].(float64))
	r.ops = []oracle.Op{{Reset: []int{r.cols, r.rows}}}
	r.m = screen.New(r.cols, r.rows, 1000)
	// A plain attach is owed a replay: nothing is known before it.
	r.offset, r.inReplay = -1, true
	if !r.plain {
		r.offset, r.inReplay = 0, false // the recorders that resume use since=0
	}
	return r
}

// keepSize resizes the client's terminal and asks the server for that size,
// as the web console and tether attach do.
func (r *recorder) keepSize(cols, rows int) {
	r.cols, r.rows = cols, rows
	r.ops = append(r.ops, oracle.Op{Resize: []int{cols, rows}})
	r.m.Resize(cols, rows)
	r.Send(map[string]any{"type": "resize", "cols": cols, "rows": rows})
}

// step reads one frame and records it.
func (r *recorder) step() map[string]any {
	r.t.Helper()
	m := r.Read()
	switch m["type"] {
	case "size":
		if r.follow {
			r.cols, r.rows = int(m["cols"].(float64)), int(m["rows"].(float64))
			r.ops = append(r.ops, oracle.Op{Resize: []int{r.cols, r.rows}})
			r.m.Resize(r.cols, r.rows)
		}
	case "replay", "output":
		data := frameData(r.t, m)
		r.inReplay = m["type"] == "replay"
		if m["type"] == "replay" && m["start"] != nil {
			if m["start"] != m["offset"] {
				r.t.Fatalf("replay start %v != offset %v", m["start"], m["offset"])
			}
			r.replays++
			r.ops = append(r.ops, oracle.Op{Reset: []int{r.cols, r.rows}})
			r.m = screen.New(r.cols, r.rows, 1000)
		}
		r.ops = append(r.ops, oracle.Op{Data: data})
		r.m.Write(data)
		r.offset = int64(m["offset"].(float64))
	case "error":
		r.t.Fatalf("error %v", m)
	}
	return m
}

// upTo reads until the client has every byte up to offset off.
func (r *recorder) upTo(off int64) {
	r.t.Helper()
	for r.offset < off {
		r.step()
	}
}

// steps describes the recorded steps other than data, for failures.
func (r *recorder) steps() string {
	var b strings.Builder
	at := 0
	for _, op := range r.ops {
		switch {
		case op.Reset != nil:
			fmt.Fprintf(&b, " reset%v@%d", op.Reset, at)
		case op.Resize != nil:
			fmt.Fprintf(&b, " resize%v@%d", op.Resize, at)
		}
		at += len(op.Data)
	}
	return b.String()
}

// text is what the client has received, for waiting on a program's output
// (escape sequences included).
func (r *recorder) text() string {
	var b strings.Builder
	for _, op := range r.ops {
		b.Write(op.Data)
	}
	return b.String()
}

// until reads frames until the received bytes contain s.
func (r *recorder) until(s string) {
	r.t.Helper()
	for !strings.Contains(r.text(), s) {
		r.step()
	}
}

// frameData is the bytes of an output or replay frame.
func frameData(t *testing.T, m map[string]any) []byte {
	t.Helper()
	s, _ := m["data"].(string)
	if m["encoding"] != "base64" {
		return []byte(s)
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("bad base64 in %v: %v", m["type"], err)
	}
	return b
}

// keepSizeAfterReplay waits for the client's first replay, then keeps its
// own size (keepSize) and waits for the replay that answers it: a resize
// sent before the first replay is answered by that one.
func (r *recorder) keepSizeAfterReplay(cols, rows int) {
	r.t.Helper()
	for r.replays < 1 {
		r.step()
	}
	r.keepSize(cols, rows)
	for r.replays < 2 {
		r.step()
	}
}
