package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/coder/websocket"

	"github.com/tether-dev/tether/internal/auth"
	"github.com/tether-dev/tether/internal/config"
	"github.com/tether-dev/tether/internal/node"
)

// target is the server under test: a node in this process (--self) or a
// running server (--server).
type target struct {
	http, ws string
	// wss lists every node's WebSocket base when --server names several:
	// clients are spread over them (wsFor), while the publisher, the
	// worker and the meter use the first.
	wss   []string
	token string
	// secret is known for --self only: then every client gets a token of
	// its own subject, as real users would, instead of sharing the admin's.
	secret []byte
	node   *node.Node
	served chan error
	dir    string
	client *http.Client
}

// selfConfig is the configuration of the --self node: defaults, except
// that the per-user and rate limits, which are policy rather than cost,
// do not cap the load the bench offers.
func selfConfig(dir string, secret []byte) *config.Config {
	cfg := config.Defaults()
	cfg.DataDir = dir
	cfg.JWTSecret = string(secret)
	cfg.NodeName = "bench"
	cfg.LogLevel = "warn"
	cfg.MaxConnsPerUser = 1 << 20
	cfg.RateLimit = 0
	cfg.OperationEventRate = 0
	cfg.MaxOperationsPerUser = 1 << 10
	return cfg
}

func openTarget(ctx context.Context, o *Options) (*target, error) {
	t := &target{client: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}, Timeout: 30 * time.Second}}
	if !o.Self {
		for i, s := range strings.Split(o.Server, ",") {
			h := strings.TrimSuffix(strings.TrimSpace(s), "/")
			if i == 0 {
				t.http = h
			}
			t.wss = append(t.wss, "ws"+strings.TrimPrefix(h, "http"))
		}
		t.ws = t.wss[0]
		t.token = o.Token
		return t, nil
	}
	dir, err := os.MkdirTemp("", "tether-bench-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	t.dir = dir
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	t.secret = []byte(hex.EncodeToString(raw))
	nctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	n, err := node.New(nctx, selfConfig(dir, t.secret), nil)
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start node: %w", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = n.Shutdown(context.Background())
		os.RemoveAll(dir)
		return nil, fmt.Errorf("listen: %w", err)
	}
	t.node, t.served = n, make(chan error, 1)
	go func() { t.served <- n.Serve(ln) }()
	t.http = "http://" + ln.Addr().String()
	t.ws = "ws://" + ln.Addr().String()
	if t.token, err = t.mint("bench-admin"); err != nil {
		t.close()
		return nil, err
	}
	return t, nil
}

// wsFor is the WebSocket base for client i: the nodes take turns.
func (t *target) wsFor(i int) string {
	if len(t.wss) == 0 {
		return t.ws
	}
	return t.wss[i%len(t.wss)]
}

func (t *target) close() {
	t.client.CloseIdleConnections()
	if t.node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = t.node.Shutdown(ctx)
		cancel()
		select {
		case <-t.served:
		case <-time.After(5 * time.Second):
		}
	}
	if t.dir != "" {
		os.RemoveAll(t.dir)
	}
}

// mint returns an admin token (with the agent role) for sub.
func (t *target) mint(sub string) (string, error) {
	tok, err := auth.Mint(t.secret, auth.MintClaims{
		Subject: sub, Roles: []string{auth.RoleAdmin, auth.RoleAgent}, TTL: 2 * time.Hour,
	})
	if err != nil {
		return "", fmt.Errorf("mint token: %w", err)
	}
	return tok, nil
}

// tokenFor returns the token of the i-th client: its own subject with
// --self, the admin token otherwise.
func (t *target) tokenFor(i int) (string, error) {
	if t.secret == nil {
		return t.token, nil
	}
	return t.mint("bench-" + strconv.Itoa(i))
}

// do sends an API request with the admin token and decodes a JSON answer
// into out (if not nil); any status but 2xx is an error.
func (t *target) do(ctx context.Context, method, path string, body, out any) error {
	var r io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, t.http+path, r)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+t.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := t.client.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(raw))
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
		}
	}
	return nil
}

// dial opens a WebSocket to url with tok (if any) as a bearer token.
func dial(ctx context.Context, url, tok string, subprotocols ...string) (*websocket.Conn, error) {
	return dialWith(ctx, nil, url, tok, subprotocols...)
}

// dialWith dials with hc (nil: the default client), so that a worker can
// choose its source address.
func dialWith(ctx context.Context, hc *http.Client, url, tok string, subprotocols ...string) (*websocket.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	opts := &websocket.DialOptions{Subprotocols: subprotocols, HTTPClient: hc}
	if tok != "" {
		opts.HTTPHeader = http.Header{"Authorization": {"Bearer " + tok}}
	}
	c, resp, err := websocket.Dial(ctx, url, opts)
	if err != nil {
		if resp != nil {
			return nil, fmt.Errorf("dial %s: %s: %w", redact(url), resp.Status, err)
		}
		return nil, fmt.Errorf("dial %s: %w", redact(url), err)
	}
	c.SetReadLimit(16 << 20)
	return c, nil
}

func redact(url string) string {
	if i := strings.Index(url, "?"); i >= 0 {
		return url[:i]
	}
	return url
}

// usage is what a process used during a run.
type usage struct {
	cpuSeconds float64
	peakRSS    float64 // bytes
	peakHeap   float64 // bytes; 0 when unknown
}

// probe reads a process's cumulative CPU seconds, resident memory and Go
// heap.
type probe func(ctx context.Context) (cpu, rss, heap float64, err error)

// meter samples a process's memory while a run goes on, for its peak, and
// its CPU time at the start and the end.
type meter struct {
	probe      probe
	stop, done chan struct{}
	mu         sync.Mutex
	u          usage
	cpu0       float64
	err        error
}

// meter measures the server: the whole process for --self (which includes
// this process's clients, so the figures are an upper bound), the remote
// server's /metrics otherwise (sampled every 200 ms: a shorter peak can be
// missed).
func (t *target) meter(ctx context.Context) *meter {
	if t.node != nil {
		return newMeter(ctx, localProbe, 20*time.Millisecond)
	}
	return newMeter(ctx, t.scrape, 200*time.Millisecond)
}

// localMeter measures this process: baselines always run here.
func localMeter(ctx context.Context) *meter { return newMeter(ctx, localProbe, 20*time.Millisecond) }

func newMeter(ctx context.Context, p probe, every time.Duration) *meter {
	m := &meter{probe: p, stop: make(chan struct{}), done: make(chan struct{})}
	m.cpu0, m.u.peakRSS, m.u.peakHeap, m.err = p(ctx)
	go func() {
		defer close(m.done)
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-m.stop:
				return
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			m.record(p(ctx))
		}
	}()
	return m
}

func (m *meter) record(cpu, rss, heap float64, err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		m.err = err
		return
	}
	m.u.cpuSeconds = cpu - m.cpu0
	m.u.peakRSS, m.u.peakHeap = max(m.u.peakRSS, rss), max(m.u.peakHeap, heap)
}

// finish stops sampling and takes a last sample.
func (m *meter) finish(ctx context.Context) (usage, error) {
	close(m.stop)
	<-m.done
	m.record(m.probe(ctx))
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.u, m.err
}

// scrape reads process CPU seconds, resident memory and Go heap in use
// from the server's Prometheus page.
func (t *target) scrape(ctx context.Context) (cpu, rss, heap float64, err error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, t.http+"/metrics", nil)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("scrape metrics: %w", err)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("scrape metrics: %w", err)
	}
	defer resp.Body.Close()
	want := map[string]*float64{
		"process_cpu_seconds_total":     &cpu,
		"process_resident_memory_bytes": &rss,
		"go_memstats_heap_inuse_bytes":  &heap,
	}
	found := 0
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if p, hit := want[name]; ok && hit {
			if v, perr := strconv.ParseFloat(strings.TrimSpace(val), 64); perr == nil {
				*p = v
				found++
			}
		}
	}
	if found < 2 {
		return 0, 0, 0, fmt.Errorf("scrape metrics: process_cpu_seconds_total or process_resident_memory_bytes missing")
	}
	return cpu, rss, heap, sc.Err()
}

func localProbe(context.Context) (cpu, rss, heap float64, err error) {
	return cpuSeconds(), rssBytes(), heapBytes(), nil
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	tv := func(t syscall.Timeval) float64 { return float64(t.Sec) + float64(t.Usec)/1e6 }
	return tv(ru.Utime) + tv(ru.Stime)
}

// rssBytes reads VmRSS from /proc/self/status (0 where there is none).
func rssBytes() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			return kb * 1024
		}
	}
	return 0
}

var heapSample = []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}

// heapBytes is the live-and-unswept heap objects, read without stopping the
// world (runtime.ReadMemStats would, every 20 ms).
func heapBytes() float64 {
	metrics.Read(heapSample)
	if heapSample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return float64(heapSample[0].Value.Uint64())
}

// settle collects garbage and returns memory to the OS so that RSS and
// heap deltas measure what is live.
func settle() (rss, heap float64) {
	runtime.GC()
	debug.FreeOSMemory()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return rssBytes(), float64(ms.HeapAlloc)
}

// usageSample adds usage figures to a round's sample.
func usageSample(s sample, u usage) {
	if u.cpuSeconds >= 0 {
		s["cpu"] = u.cpuSeconds
	}
	s["peak_rss"] = u.peakRSS / (1 << 20)
	if u.peakHeap > 0 {
		s["peak_heap"] = u.peakHeap / (1 << 20)
	}
}
