package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/auth"
)

// workerArg is the hidden `tether bench worker` mode.
const workerArg = "worker"

// WorkerEnv is set in the environment of re-executed worker processes, so
// that a test binary (whose TestMain checks it) can act as a worker too.
const WorkerEnv = "TETHER_BENCH_WORKER"

// RunWorker runs a worker over stdin and stdout; a test binary's TestMain
// calls it when WorkerEnv is set.
func RunWorker() int {
	if err := runWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench worker:", err)
		return 1
	}
	return 0
}

// job is what a worker is asked to do, sent as one JSON line on its stdin.
// It opens Conns connections to URL, subscribes each to Channel if set,
// reports, then (with Expect) awaits Expect messages on each connection and
// reports their latencies, and closes everything when its stdin says
// "close", ends, or Timeout passes.
type job struct {
	URL   string `json:"url"`
	Token string `json:"token,omitempty"`
	// Secret, when set, mints each connection a token of its own subject
	// bench-<First+i>, as --self does.
	Secret  string `json:"secret,omitempty"`
	First   int    `json:"first"`
	Conns   int    `json:"conns"`
	SrcIP   string `json:"src_ip,omitempty"`
	Channel string `json:"channel,omitempty"`
	// Operation, when set, is watched with subscribe_operation from
	// AfterSeq instead.
	Operation string `json:"operation,omitempty"`
	AfterSeq  int64  `json:"after_seq,omitempty"`
	Expect    int    `json:"expect,omitempty"`
	// Await bounds the wait for the expected messages, after which the
	// worker reports those missing; shorter than Timeout, so that the
	// report comes before the parent gives up.
	Await   time.Duration `json:"await,omitempty"`
	Timeout time.Duration `json:"timeout"`
	// Bare, instead of all the above, runs a bare echo server (see
	// bareServer) in the worker, reports its URL and serves until "close".
	Bare bool `json:"bare,omitempty"`
}

// report is what a worker says on its stdout, one JSON line per event.
type report struct {
	Event    string  `json:"event"`         // open, done or closed
	URL      string  `json:"url,omitempty"` // a bare server's (open)
	Opened   int     `json:"opened,omitempty"`
	Failed   int     `json:"failed,omitempty"`
	FirstErr string  `json:"first_err,omitempty"`
	Seconds  float64 `json:"seconds,omitempty"`
	// Latencies are the publish-to-delivery times in ms (done).
	Latencies []float64 `json:"latencies,omitempty"`
	Missing   int       `json:"missing,omitempty"`
	// Last is when the last message arrived (Unix ns).
	Last int64 `json:"last,omitempty"`
}

// dialConcurrency is how many handshakes one worker has in flight.
const dialConcurrency = 32

func runWorker(ctx context.Context, stdin io.Reader, stdout io.Writer) error {
	in := bufio.NewReader(stdin)
	line, err := in.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("read job: %w", err)
	}
	var j job
	if err := json.Unmarshal(line, &j); err != nil {
		return fmt.Errorf("decode job: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, j.Timeout)
	defer cancel()
	enc := json.NewEncoder(stdout)
	if j.Bare {
		return runBare(ctx, in, enc)
	}
	hc := &http.Client{Transport: &http.Transport{DialContext: (&net.Dialer{Timeout: 10 * time.Second}).DialContext}}
	if j.SrcIP != "" {
		// Several source addresses spread the connections over more
		// ephemeral port ranges than one address has.
		d := &net.Dialer{Timeout: 10 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(j.SrcIP)}}
		hc.Transport = &http.Transport{DialContext: d.DialContext}
	}
	defer hc.CloseIdleConnections()

	conns := make([]*websocket.Conn, j.Conns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.CloseNow()
			}
		}
	}()
	var failed atomic.Int32
	var errMu sync.Mutex
	var firstErr error
	next := atomic.Int64{}
	start := time.Now()
	var wg sync.WaitGroup
	for range min(dialConcurrency, j.Conns) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= j.Conns || ctx.Err() != nil {
					return
				}
				c, err := openOne(ctx, hc, &j, i)
				if err != nil {
					failed.Add(1)
					errMu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					errMu.Unlock()
					continue
				}
				conns[i] = c
			}
		})
	}
	wg.Wait()
	rep := report{Event: "open", Opened: j.Conns - int(failed.Load()), Failed: int(failed.Load()), Seconds: time.Since(start).Seconds()}
	if firstErr != nil {
		rep.FirstErr = firstErr.Error()
	}
	if err := enc.Encode(rep); err != nil {
		return fmt.Errorf("report: %w", err)
	}
	if j.Expect > 0 {
		actx, cancel := context.WithTimeout(ctx, j.Await)
		rep := awaitMessages(actx, conns, j.Expect)
		cancel()
		if err := enc.Encode(rep); err != nil {
			return fmt.Errorf("report: %w", err)
		}
	} else {
		// Idle connections still answer the server's pings.
		for _, c := range conns {
			if c != nil {
				c.CloseRead(ctx)
			}
		}
	}
	// Hold the connections until told to close, stdin ends or time is up.
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		_, _ = in.ReadBytes('\n')
	}()
	select {
	case <-closed:
	case <-ctx.Done():
	}
	for i, c := range conns {
		if c != nil {
			c.CloseNow()
			conns[i] = nil
		}
	}
	return enc.Encode(report{Event: "closed"})
}

// openOne dials connection i of j and subscribes it if j asks.
func openOne(ctx context.Context, hc *http.Client, j *job, i int) (*websocket.Conn, error) {
	tok := j.Token
	if j.Secret != "" {
		var err error
		tok, err = auth.Mint([]byte(j.Secret), auth.MintClaims{Subject: "bench-" + strconv.Itoa(j.First+i), Roles: []string{auth.RoleAdmin}, TTL: 2 * time.Hour})
		if err != nil {
			return nil, fmt.Errorf("mint: %w", err)
		}
	}
	c, err := dialWith(ctx, hc, j.URL, tok)
	if err != nil {
		return nil, err
	}
	switch {
	case j.Channel != "":
		err = subscribe(ctx, c, map[string]any{"type": "subscribe", "channel": j.Channel, "id": 1}, "subscribed")
	case j.Operation != "":
		err = subscribe(ctx, c, map[string]any{"type": "subscribe_operation", "operation_id": j.Operation, "after_seq": j.AfterSeq, "id": 1}, "operation_subscribed")
	}
	if err != nil {
		c.CloseNow()
		return nil, err
	}
	return c, nil
}

// subscribe sends req and awaits a reply of type want.
func subscribe(ctx context.Context, c *websocket.Conn, req map[string]any, want string) error {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	b, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if err := c.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	if _, b, err = c.Read(ctx); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	var m struct{ Type, Message string }
	if err := json.Unmarshal(b, &m); err != nil || m.Type != want {
		return fmt.Errorf("subscribe: answered %.200q", b)
	}
	return nil
}

// delivery is the part of a fan-out message (a channel message or an
// operation's progress) the subscribers read: the publisher puts its clock
// in data.t.
type delivery struct {
	Type string `json:"type"`
	Data struct {
		T int64 `json:"t"`
	} `json:"data"`
}

// awaitMessages reads expect messages on every connection (until ctx
// ends) and reports the publish-to-delivery latencies.
func awaitMessages(ctx context.Context, conns []*websocket.Conn, expect int) report {
	var mu sync.Mutex
	rep := report{Event: "done"}
	var wg sync.WaitGroup
	for _, c := range conns {
		if c == nil {
			continue
		}
		wg.Go(func() {
			lat := make([]float64, 0, expect)
			var last int64
			var err error
			for len(lat) < expect {
				var b []byte
				if _, b, err = c.Read(ctx); err != nil {
					break
				}
				now := time.Now().UnixNano()
				var d delivery
				if json.Unmarshal(b, &d) == nil && d.Data.T > 0 {
					lat = append(lat, float64(now-d.Data.T)/1e6)
					last = max(last, now)
				}
			}
			mu.Lock()
			rep.Latencies = append(rep.Latencies, lat...)
			rep.Missing += expect - len(lat)
			rep.Last = max(rep.Last, last)
			if err != nil && rep.FirstErr == "" {
				rep.FirstErr = err.Error()
			}
			mu.Unlock()
		})
	}
	wg.Wait()
	return rep
}

// workerProc is one running worker: a process, or a goroutine when the
// clients may share this process.
type workerProc struct {
	stdin   io.WriteCloser
	reports chan report
	wait    func() error
}

// runBare serves a bare echo server until stdin says "close" or ends, or
// ctx ends.
func runBare(ctx context.Context, in *bufio.Reader, enc *json.Encoder) error {
	b, err := startBare(false)
	if err != nil {
		return err
	}
	if err := enc.Encode(report{Event: "open", URL: b.url}); err != nil {
		_ = b.close()
		return err
	}
	stop := make(chan struct{})
	go func() {
		_, _ = in.ReadString('\n') // "close", or an error when stdin ends
		close(stop)
	}()
	select {
	case <-stop:
	case <-ctx.Done():
	}
	err = b.close()
	return errors.Join(err, enc.Encode(report{Event: "closed"}))
}

// startWorker starts a worker on j, as a process unless inProcess.
func (e *env) startWorker(ctx context.Context, j job, inProcess bool) (*workerProc, error) {
	line, err := json.Marshal(j)
	if err != nil {
		return nil, fmt.Errorf("encode job: %w", err)
	}
	w := &workerProc{reports: make(chan report, 4)}
	var stdout io.ReadCloser
	if inProcess {
		inR, inW := io.Pipe()
		outR, outW := io.Pipe()
		done := make(chan error, 1)
		go func() {
			err := runWorker(ctx, inR, outW)
			outW.CloseWithError(err)
			inR.Close()
			done <- err
		}()
		w.stdin, stdout, w.wait = inW, outR, func() error { return <-done }
	} else {
		exe, err := os.Executable()
		if err != nil {
			return nil, fmt.Errorf("find own binary: %w", err)
		}
		cmd := exec.CommandContext(ctx, exe, "bench", workerArg)
		cmd.Env = append(os.Environ(), WorkerEnv+"=1")
		cmd.Stderr = e.logw
		cmd.WaitDelay = 5 * time.Second
		if w.stdin, err = cmd.StdinPipe(); err != nil {
			return nil, fmt.Errorf("worker stdin: %w", err)
		}
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, fmt.Errorf("worker stdout: %w", err)
		}
		if err := cmd.Start(); err != nil {
			return nil, fmt.Errorf("start worker: %w", err)
		}
		w.wait = cmd.Wait
	}
	go func() {
		defer close(w.reports)
		dec := json.NewDecoder(stdout)
		for {
			var r report
			if dec.Decode(&r) != nil {
				return
			}
			w.reports <- r
		}
	}()
	if _, err := w.stdin.Write(append(line, '\n')); err != nil {
		w.stop()
		return nil, fmt.Errorf("send job: %w", err)
	}
	return w, nil
}

// next awaits the worker's report of event.
func (w *workerProc) next(ctx context.Context, event string) (report, error) {
	for {
		select {
		case r, ok := <-w.reports:
			if !ok {
				return report{}, fmt.Errorf("worker ended before %q", event)
			}
			if r.Event == event {
				return r, nil
			}
		case <-ctx.Done():
			return report{}, fmt.Errorf("waiting for the worker's %q: %w", event, ctx.Err())
		}
	}
}

// stop tells the worker to close its connections and waits for it.
func (w *workerProc) stop() error {
	_, _ = w.stdin.Write([]byte("close\n"))
	_ = w.stdin.Close()
	go func() {
		for range w.reports { // drain until the worker's stdout ends
		}
	}()
	if err := w.wait(); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return fmt.Errorf("worker: %w", err)
	}
	return nil
}

// stopAll stops workers, returning the first error.
func stopAll(ws []*workerProc) error {
	var errs []error
	for _, w := range ws {
		if w != nil {
			errs = append(errs, w.stop())
		}
	}
	return errors.Join(errs...)
}

// srcIP gives worker k its own loopback source address when the target is
// on loopback, "" otherwise.
func srcIP(url string, k int) string {
	if strings.Contains(url, "://127.") || strings.Contains(url, "://localhost") {
		return "127.0." + strconv.Itoa(1+k/250) + "." + strconv.Itoa(2+k%250)
	}
	return ""
}
