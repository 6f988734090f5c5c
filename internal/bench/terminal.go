package bench

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coder/websocket"
	"github.com/creack/pty"

	"github.com/tether-dev/tether/internal/protocol"
)

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// framings returns the output framings --framing asks for.
func (e *env) framings() ([]string, error) {
	var out []string
	for _, f := range strings.Split(e.opts.Framing, ",") {
		switch f = strings.TrimSpace(f); f {
		case "json", "binary":
			out = append(out, f)
		case "":
		default:
			return nil, fmt.Errorf("--framing: %q is neither json nor binary", f)
		}
	}
	return out, nil
}

func subprotocols(framing string) []string {
	if framing == "binary" {
		return []string{protocol.SubprotocolTerminalBinary}
	}
	return nil
}

// genFile writes size bytes of base64 text in 76-column lines, as base64(1)
// prints them, and returns its path and CRC-32C.
func genFile(dir string, size int64) (string, uint32, error) {
	path := filepath.Join(dir, fmt.Sprintf("bench-%d.b64", size))
	f, err := os.Create(path)
	if err != nil {
		return "", 0, fmt.Errorf("generate input: %w", err)
	}
	defer f.Close()
	h := crc32.New(crcTable)
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	rng := rand.NewChaCha8([32]byte{1})
	raw := make([]byte, 57) // 57 bytes make one 76-character line
	line := make([]byte, 77)
	line[76] = '\n'
	for left := size; left > 0; {
		_, _ = rng.Read(raw)
		base64.StdEncoding.Encode(line, raw)
		n := min(left, int64(len(line)))
		if _, err := w.Write(line[:n]); err != nil {
			return "", 0, fmt.Errorf("generate input: %w", err)
		}
		left -= n
	}
	if err := w.Flush(); err != nil {
		return "", 0, fmt.Errorf("generate input: %w", err)
	}
	return path, h.Sum32(), f.Close()
}

// termFrame is one frame from a terminal endpoint.
type termFrame struct {
	typ   string // output, replay, status, exit, error, …
	data  []byte
	end   int64 // offset just after data (output), the snapshot's offset (replay), or the status/exit offset
	start bool  // a replay (a snapshot) begins
	code  int   // exit code
	msg   string
}

// readTerm reads and decodes one frame.
func readTerm(ctx context.Context, c *websocket.Conn) (termFrame, error) {
	typ, b, err := c.Read(ctx)
	if err != nil {
		return termFrame{}, fmt.Errorf("read terminal: %w", err)
	}
	if typ == websocket.MessageBinary {
		if len(b) < 9 {
			return termFrame{}, fmt.Errorf("binary frame of %d bytes", len(b))
		}
		f := termFrame{typ: protocol.TypeOutput, end: int64(binary.BigEndian.Uint64(b[1:9])), data: b[9:]}
		switch b[0] {
		case protocol.BinaryReplayStart:
			f.typ, f.start = protocol.TypeReplay, true
		case protocol.BinaryReplayOutput:
			f.typ = protocol.TypeReplay
		}
		return f, nil
	}
	if f, ok := fastOutput(b); ok {
		return f, nil
	}
	return decodeTerm(b)
}

// decodeTerm decodes a JSON terminal frame with encoding/json.
func decodeTerm(b []byte) (termFrame, error) {
	var m struct {
		Type     string `json:"type"`
		Data     string `json:"data"`
		Encoding string `json:"encoding"`
		Offset   int64  `json:"offset"`
		Start    *int64 `json:"start"`
		Code     any    `json:"code"`
		Message  string `json:"message"`
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return termFrame{}, fmt.Errorf("terminal frame %.80q: %w", b, err)
	}
	f := termFrame{typ: m.Type, end: m.Offset, start: m.Start != nil, msg: m.Message}
	if c, ok := m.Code.(float64); ok {
		f.code = int(c)
	} else if m.Code != nil {
		f.msg = fmt.Sprint(m.Code) + ": " + m.Message
	}
	if m.Encoding == "base64" {
		var err error
		if f.data, err = base64.StdEncoding.DecodeString(m.Data); err != nil {
			return termFrame{}, fmt.Errorf("output frame: %w", err)
		}
	} else {
		f.data = []byte(m.Data)
	}
	return f, nil
}

// accountant follows output by offset and checks it has no gap and no
// duplicate; it hashes the output. A replay (a snapshot of the screen)
// past what it has is a skip (the client fell more than the ring behind):
// the bytes in between are counted as skipped.
type accountant struct {
	have    int64
	skipped int64
	frames  int64
	h       hash.Hash32
	last    byte
}

func newAccountant(since int64) *accountant {
	return &accountant{have: since, h: crc32.New(crcTable)}
}

func (a *accountant) add(f termFrame) error {
	if f.typ == protocol.TypeReplay {
		// A replay is a snapshot of the screen at offset f.end, not
		// output (docs/protocol.md): the output between what the client
		// has and that offset was skipped; output resumes from there.
		if f.start && f.end > a.have {
			a.skipped += f.end - a.have
			a.have = f.end
		}
		return nil
	}
	n := f.end - a.have
	switch {
	case n < 0:
		return fmt.Errorf("output ending at %d repeats bytes (have %d)", f.end, a.have)
	case n > int64(len(f.data)):
		return fmt.Errorf("output ending at %d misses %d bytes (have %d)", f.end, n-int64(len(f.data)), a.have)
	case n != int64(len(f.data)):
		return fmt.Errorf("output of %d bytes ending at %d does not follow %d", len(f.data), f.end, a.have)
	}
	p := f.data[int64(len(f.data))-n:]
	a.frames++
	a.h.Write(p)
	if len(p) > 0 {
		a.last = p[len(p)-1]
	}
	a.have = f.end
	return nil
}

// readUntil reads output frames into a until it has offset want; it fails
// on an exit or error frame before that.
func readUntil(ctx context.Context, c *websocket.Conn, a *accountant, want int64) error {
	for a.have < want {
		f, err := readTerm(ctx, c)
		if err != nil {
			return err
		}
		switch f.typ {
		case protocol.TypeOutput, protocol.TypeReplay:
			if err := a.add(f); err != nil {
				return err
			}
		case protocol.TypeError:
			return fmt.Errorf("terminal error: %s", f.msg)
		case protocol.TypeExit:
			return fmt.Errorf("program exited (code %d) at offset %d, want %d", f.code, f.end, want)
		}
	}
	return nil
}

// milestone creates a milestone running sh -c script and returns its
// terminal URL and a function that deletes it.
func (e *env) milestone(ctx context.Context, kind string, round int, script string) (string, func(), error) {
	return e.milestoneOn(ctx, e.t, kind, round, script)
}

// milestoneOn is milestone on target t.
func (e *env) milestoneOn(ctx context.Context, t *target, kind string, round int, script string) (string, func(), error) {
	id := fmt.Sprintf("bench-%s-%d-%d", kind, time.Now().UnixNano()%1e9, round)
	body := map[string]any{"id": id, "command": []string{"sh", "-c", script}, "cols": 200, "rows": 50}
	if err := t.do(ctx, "POST", "/api/milestones", body, nil); err != nil {
		return "", nil, fmt.Errorf("create milestone: %w", err)
	}
	del := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := t.do(dctx, "DELETE", "/api/milestones/"+id, nil, nil); err != nil {
			e.logf("delete milestone %s: %v", id, err)
		}
	}
	return t.ws + "/api/milestones/" + id + "/terminal", del, nil
}

// startPTY runs sh -c script on a PTY of the same size the milestones use.
func startPTY(ctx context.Context, script string) (*os.File, *exec.Cmd, error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", script)
	cmd.WaitDelay = 5 * time.Second
	f, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: 200, Rows: 50})
	if err != nil {
		return nil, nil, fmt.Errorf("start on a pty: %w", err)
	}
	return f, cmd, nil
}

func terminalThroughput(ctx context.Context, e *env) ([]Result, error) {
	framings, err := e.framings()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "tether-bench-tp-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	size := e.opts.Size
	e.logf("terminal-throughput: generating %d bytes of base64", size)
	path, sum, err := genFile(dir, size)
	if err != nil {
		return nil, err
	}
	script := "stty raw -echo; exec cat " + path
	// Generous: a tenth of the bare PTY's speed still finishes.
	limit := 30*time.Second + time.Duration(size/(1<<20))*time.Second
	// Every byte must be there unless the client skipped (then the hash
	// cannot match, and the skip is reported instead).
	check := func(a *accountant) error {
		if a.have != size || (a.skipped == 0 && a.h.Sum32() != sum) {
			return fmt.Errorf("got %d bytes (crc %08x, %d skipped), want %d (crc %08x)", a.have, a.h.Sum32(), a.skipped, size, sum)
		}
		return nil
	}
	specs := []spec{{"throughput", "MB/s"}, {"skipped", "MB"}, {"frame", "KiB"}, {"cpu", "s"}, {"peak_rss", "MiB"}, {"peak_heap", "MiB"}}
	base := func(ctx context.Context, _ int) (sample, error) {
		ctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		m := localMeter(ctx)
		start := time.Now()
		f, cmd, err := startPTY(ctx, script)
		if err != nil {
			return nil, err
		}
		a := newAccountant(0)
		buf := make([]byte, 64<<10)
		for {
			n, rerr := f.Read(buf)
			a.frames++
			a.h.Write(buf[:n])
			a.have += int64(n)
			if rerr != nil {
				break // EIO once the program has exited and its output is read
			}
		}
		elapsed := time.Since(start)
		f.Close()
		if err := cmd.Wait(); err != nil {
			return nil, fmt.Errorf("cat on a pty: %w", err)
		}
		u, _ := m.finish(ctx)
		if err := check(a); err != nil {
			return nil, fmt.Errorf("bare pty: %w", err)
		}
		// frame: the bytes one read of the PTY returns, on average.
		s := sample{"throughput": float64(size) / elapsed.Seconds() / 1e6, "skipped": 0, "frame": float64(size) / float64(max(a.frames, 1)) / 1024}
		usageSample(s, u)
		return s, nil
	}
	var out []Result
	for _, fr := range framings {
		srv := func(ctx context.Context, round int) (sample, error) {
			ctx, cancel := context.WithTimeout(ctx, limit)
			defer cancel()
			url, del, err := e.milestone(ctx, "tp", round, script)
			if err != nil {
				return nil, err
			}
			defer del()
			m := e.t.meter(ctx)
			start := time.Now()
			c, err := dial(ctx, url, e.t.token, subprotocols(fr)...)
			if err != nil {
				return nil, err
			}
			defer c.CloseNow()
			a := newAccountant(0)
			for done := false; !done; {
				f, err := readTerm(ctx, c)
				if err != nil {
					return nil, err
				}
				switch f.typ {
				case protocol.TypeOutput, protocol.TypeReplay:
					if err := a.add(f); err != nil {
						return nil, err
					}
				case protocol.TypeError:
					return nil, fmt.Errorf("terminal error: %s", f.msg)
				case protocol.TypeExit:
					if f.code != 0 {
						return nil, fmt.Errorf("cat exited with %d", f.code)
					}
					done = true
				}
			}
			elapsed := time.Since(start)
			u, merr := m.finish(ctx)
			if err := check(a); err != nil {
				return nil, err
			}
			// Throughput counts what the client got: output it skipped
			// (the PTY outran it by more than the ring) is not delivered.
			s := sample{
				"throughput": float64(size-a.skipped) / elapsed.Seconds() / 1e6, "skipped": float64(a.skipped) / 1e6,
				"frame": float64(size-a.skipped) / float64(max(a.frames, 1)) / 1024,
			}
			usageSample(s, u)
			return s, merr
		}
		r, err := e.rounds(ctx, "terminal-throughput/"+fr, map[string]any{"size": size, "framing": fr}, specs, base, srv)
		r.Notes = append(r.Notes, "baseline: the same cat read from a bare PTY by this process")
		if e.t.node != nil {
			r.Notes = append(r.Notes, "tether cpu/memory: the whole bench process (server and client)")
		}
		out = append(out, r)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// echoScript prints R once the terminal is raw, then echoes every byte.
const echoScript = "stty raw -echo; printf R; exec cat"

func terminalEcho(ctx context.Context, e *env) ([]Result, error) {
	framings, err := e.framings()
	if err != nil {
		return nil, err
	}
	count := e.opts.Count
	limit := 30*time.Second + time.Duration(count)*10*time.Millisecond
	specs := []spec{{"p50", "µs"}, {"p99", "µs"}, {"p999", "µs"}, {"mean", "µs"}, {"ws_p50", "µs"}, {"floor_p50", "µs"}, {"floor_p99", "µs"}}
	if e.vs != nil {
		specs = append(specs, spec{"versus_p50", "µs"}, spec{"versus_p99", "µs"})
	}
	summarize := func(lat []float64) sample {
		slices.Sort(lat)
		var sum float64
		for _, v := range lat {
			sum += v
		}
		return sample{"p50": percentile(lat, 50), "p99": percentile(lat, 99), "p999": percentile(lat, 99.9), "mean": sum / float64(len(lat))}
	}
	// A bare WebSocket echo (gws, no protocol) gives the other half of the
	// floor: a gateway's keystroke is at least a PTY echo plus a WebSocket
	// round trip, and "floor" is their sum, taken keystroke by keystroke.
	// It runs where the server does: in this process for --self, in a
	// process of its own for --server, since a round trip between two
	// processes costs more wake-ups than one within a process.
	bareURL, stopBare, err := e.bareEcho(ctx)
	if err != nil {
		return nil, err
	}
	defer stopBare()
	// Each round types on a bare PTY, on the bare WebSocket and through
	// Tether in turn, one keystroke each: on this kind of machine a wait
	// costs whatever the idle CPUs take to wake, which drifts by several
	// times from one second to the next, and keystroke-level interleaving
	// gives every path the same conditions. rounds() sees them as a
	// baseline and a server sample.
	paired := func(ctx context.Context, round int, fr string) (base, srv sample, err error) {
		ctx, cancel := context.WithTimeout(ctx, limit)
		defer cancel()
		f, cmd, err := startPTY(ctx, echoScript)
		if err != nil {
			return nil, nil, err
		}
		defer func() {
			f.Close()
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}()
		// A read deadline on the PTY bounds every wait on it.
		if err := f.SetReadDeadline(time.Now().Add(limit)); err != nil {
			return nil, nil, fmt.Errorf("pty deadline: %w", err)
		}
		buf := make([]byte, 64)
		if _, err := io.ReadFull(f, buf[:1]); err != nil || buf[0] != 'R' {
			return nil, nil, fmt.Errorf("pty: no ready mark (%q, %v)", buf[:1], err)
		}
		term, err := e.echoTerminal(ctx, e.t, round, fr)
		if err != nil {
			return nil, nil, err
		}
		defer term.close()
		terms := []*echoTerm{term}
		if e.vs != nil {
			vs, err := e.echoTerminal(ctx, e.vs, round, fr)
			if err != nil {
				return nil, nil, fmt.Errorf("--versus: %w", err)
			}
			defer vs.close()
			terms = append(terms, vs)
		}
		wc, err := dial(ctx, bareURL, "")
		if err != nil {
			return nil, nil, err
		}
		defer wc.CloseNow()
		ptyLat := make([]float64, 0, count)
		wsLat := make([]float64, 0, count)
		floor := make([]float64, 0, count)
		for i := range count {
			b := byte('a' + i%26)
			t0 := time.Now()
			if _, err := f.Write([]byte{b}); err != nil {
				return nil, nil, fmt.Errorf("pty write: %w", err)
			}
			if _, err := io.ReadFull(f, buf[:1]); err != nil {
				return nil, nil, fmt.Errorf("pty read: %w", err)
			}
			ptyLat = append(ptyLat, float64(time.Since(t0).Nanoseconds())/1e3)
			if buf[0] != b {
				return nil, nil, fmt.Errorf("pty echoed %q for %q", buf[0], b)
			}

			t0 = time.Now()
			if err := wc.Write(ctx, websocket.MessageBinary, []byte{b}); err != nil {
				return nil, nil, fmt.Errorf("bare websocket write: %w", err)
			}
			if _, m, err := wc.Read(ctx); err != nil || len(m) != 1 || m[0] != b {
				return nil, nil, fmt.Errorf("bare websocket echoed %q for %q: %v", m, b, err)
			}
			wsLat = append(wsLat, float64(time.Since(t0).Nanoseconds())/1e3)
			floor = append(floor, ptyLat[i]+wsLat[i])

			// With --versus the two servers take turns going first, so
			// that neither always follows the other's wake-ups.
			for k := range terms {
				j := k
				if i%2 == 1 {
					j = len(terms) - 1 - k
				}
				if err := terms[j].key(ctx, b); err != nil {
					return nil, nil, err
				}
			}
		}
		base = summarize(ptyLat)
		slices.Sort(wsLat)
		slices.Sort(floor)
		base["ws_p50"] = percentile(wsLat, 50)
		base["floor_p50"], base["floor_p99"] = percentile(floor, 50), percentile(floor, 99)
		srv = summarize(term.lat)
		if len(terms) > 1 {
			vs := terms[1].lat
			slices.Sort(vs)
			srv["versus_p50"], srv["versus_p99"] = percentile(vs, 50), percentile(vs, 99)
		}
		return base, srv, nil
	}
	var out []Result
	for _, fr := range framings {
		var srvSample sample
		base := func(ctx context.Context, round int) (sample, error) {
			b, s, err := paired(ctx, round, fr)
			srvSample = s
			return b, err
		}
		srv := func(context.Context, int) (sample, error) { return srvSample, nil }
		r, err := e.rounds(ctx, "terminal-echo/"+fr, map[string]any{"count": count, "framing": fr}, specs, base, srv)
		r.Notes = append(r.Notes, "baseline: one byte written to and read back from a bare PTY running the same raw cat; ws: one byte echoed by a bare gws server (in this process with --self, in a process of its own with --server); floor: PTY + ws, keystroke by keystroke; the three paths and Tether alternate one keystroke each")
		if e.vs != nil {
			r.Notes = append(r.Notes, "versus: the same keystrokes on "+e.opts.Versus+", alternating with the target (each goes first every other keystroke)")
		}
		out = append(out, r)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// bareEcho starts the bare echo server for terminal-echo: in this
// process with --self, else in a worker process.
func (e *env) bareEcho(ctx context.Context) (string, func(), error) {
	if e.opts.Self {
		b, err := startBare(false)
		if err != nil {
			return "", nil, err
		}
		return b.url, func() {
			if err := b.close(); err != nil {
				e.logf("terminal-echo: %v", err)
			}
		}, nil
	}
	w, err := e.startWorker(ctx, job{Bare: true, Timeout: e.opts.Timeout}, false)
	if err != nil {
		return "", nil, err
	}
	r, err := w.next(ctx, "open")
	if err != nil {
		_ = w.stop()
		return "", nil, fmt.Errorf("bare echo worker: %w", err)
	}
	return r.URL, func() {
		if err := w.stop(); err != nil {
			e.logf("terminal-echo: bare echo worker: %v", err)
		}
	}, nil
}

// echoTerm is a raw cat in a milestone, typed on through its terminal
// endpoint.
type echoTerm struct {
	c     *websocket.Conn
	a     *accountant
	fr    string
	typed int64
	lat   []float64 // round trip of each keystroke, µs
	name  string    // the server, for errors
	del   func()
}

// echoTerminal starts a raw cat on t and waits for its ready mark.
func (e *env) echoTerminal(ctx context.Context, t *target, round int, fr string) (*echoTerm, error) {
	url, del, err := e.milestoneOn(ctx, t, "echo", round, echoScript)
	if err != nil {
		return nil, err
	}
	c, err := dial(ctx, url, t.token, subprotocols(fr)...)
	if err != nil {
		del()
		return nil, err
	}
	et := &echoTerm{c: c, a: newAccountant(0), fr: fr, del: del, name: t.http}
	if err := readUntil(ctx, c, et.a, 1); err != nil {
		et.close()
		return nil, fmt.Errorf("wait for the ready mark: %w", err)
	}
	return et, nil
}

// key types b, waits for its echo and records the round trip.
func (et *echoTerm) key(ctx context.Context, b byte) error {
	t0 := time.Now()
	var err error
	if et.fr == "binary" {
		err = et.c.Write(ctx, websocket.MessageBinary, []byte{b})
	} else {
		err = et.c.Write(ctx, websocket.MessageText, []byte(`{"type":"input","data":"`+string(rune(b))+`"}`))
	}
	if err != nil {
		return fmt.Errorf("%s: send keystroke: %w", et.name, err)
	}
	et.typed++
	if err := readUntil(ctx, et.c, et.a, et.typed+1); err != nil {
		return fmt.Errorf("%s: %w", et.name, err)
	}
	et.lat = append(et.lat, float64(time.Since(t0).Nanoseconds())/1e3)
	if et.a.last != b {
		return fmt.Errorf("%s: echoed %q for %q", et.name, et.a.last, b)
	}
	return nil
}

func (et *echoTerm) close() {
	et.c.CloseNow()
	et.del()
}

// resumeTerminal measures a reconnect that has missed output: the time
// from dialling with ?since= to the first byte typed after the reconnect
// coming back, behind everything missed. The baseline reconnects having
// missed nothing.
func resumeTerminal(ctx context.Context, e *env) (Result, error) {
	dir, err := os.MkdirTemp("", "tether-bench-resume-")
	if err != nil {
		return Result{}, fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(dir)
	missed := e.opts.Missed
	path, _, err := genFile(dir, missed)
	if err != nil {
		return Result{}, err
	}
	// R: raw mode is on; then one byte releases the missed output.
	script := "stty raw -echo; printf R; head -c 1 >/dev/null; cat " + path + "; exec cat"
	run := func(catchUp bool) roundFunc {
		return func(ctx context.Context, round int) (sample, error) {
			ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
			defer cancel()
			url, del, err := e.milestone(ctx, "resume", round, script)
			if err != nil {
				return nil, err
			}
			defer del()
			c, err := dial(ctx, url, e.t.token, protocol.SubprotocolTerminalBinary)
			if err != nil {
				return nil, err
			}
			if err := readUntil(ctx, c, newAccountant(0), 1); err != nil {
				c.CloseNow()
				return nil, fmt.Errorf("wait for the ready mark: %w", err)
			}
			// This client leaves; the program prints while nobody is attached.
			err = c.Write(ctx, websocket.MessageBinary, []byte{'x'})
			c.CloseNow()
			if err != nil {
				return nil, fmt.Errorf("release output: %w", err)
			}
			total := 1 + missed
			if err := waitOffset(ctx, e, url, total); err != nil {
				return nil, err
			}
			since := int64(1)
			if !catchUp {
				since = total
			}
			start := time.Now()
			c, err = dial(ctx, url+"?since="+strconv.FormatInt(since, 10), e.t.token, protocol.SubprotocolTerminalBinary)
			if err != nil {
				return nil, err
			}
			defer c.CloseNow()
			if err := c.Write(ctx, websocket.MessageBinary, []byte{'z'}); err != nil {
				return nil, fmt.Errorf("send keystroke: %w", err)
			}
			a := newAccountant(since)
			if err := readUntil(ctx, c, a, total+1); err != nil {
				return nil, err
			}
			elapsed := time.Since(start)
			if a.skipped > 0 {
				return nil, fmt.Errorf("skipped %d bytes: ?since=%d had left the ring", a.skipped, since)
			}
			if a.last != 'z' {
				return nil, fmt.Errorf("last byte %q, want the keystroke", a.last)
			}
			return sample{"first_live_byte": float64(elapsed.Microseconds()) / 1e3}, nil
		}
	}
	r, err := e.rounds(ctx, "resume/terminal", map[string]any{"missed": missed}, []spec{{"first_live_byte", "ms"}}, run(false), run(true))
	r.Notes = append(r.Notes, fmt.Sprintf("baseline: the same reconnect having missed nothing; tether: with %d bytes missed (?since=)", missed))
	return r, err
}

// waitOffset polls the terminal's status (attaching in view mode) until
// the program has printed want bytes.
func waitOffset(ctx context.Context, e *env, url string, want int64) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	var at int64
	for {
		c, err := dial(ctx, url+"?mode=view", e.t.token, protocol.SubprotocolTerminalBinary)
		if err != nil {
			return err
		}
		f, err := readTerm(ctx, c)
		c.CloseNow()
		if err != nil {
			return err
		}
		if f.typ != protocol.TypeStatus {
			return fmt.Errorf("first terminal frame is %q, want status", f.typ)
		}
		if at = f.end; at >= want {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("program printed %d of %d bytes: %w", at, want, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
