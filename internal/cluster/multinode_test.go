package cluster_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-dev/tether/internal/testkit"
)

// These tests run real `tether serve` processes against a real three-node
// NATS cluster with JetStream, started in this process.

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

func tetherBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the tether binary and runs a NATS cluster")
	}
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "tether-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "tether")
		cmd := exec.Command("go", "build", "-o", binPath, "../../cmd/tether")
		cmd.Env = append(os.Environ(), "GOTOOLCHAIN=local")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

func freePort(t *testing.T, ip string) int {
	t.Helper()
	ln, err := net.Listen("tcp", ip+":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// NATSCluster is a three-node NATS cluster with JetStream: servers in this
// process (startNATSCluster), or processes that can be killed
// (startNATSProcesses).
type NATSCluster struct {
	URL     string
	servers []*server.Server
	procs   []*natsProc
}

// tryNATSCluster starts three clustered servers on ports picked free.
func tryNATSCluster(t *testing.T) (*NATSCluster, error) {
	const size = 3
	client, route := make([]int, size), make([]int, size)
	var routes []string
	for i := range size {
		client[i], route[i] = freePort(t, "127.0.0.1"), freePort(t, "127.0.0.1")
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", route[i]))
	}
	nc := &NATSCluster{}
	var urls []string
	for i := range size {
		opts := &server.Options{
			ServerName: fmt.Sprintf("nats-%d", i), Host: "127.0.0.1", Port: client[i],
			JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
			Cluster: server.ClusterOpts{Name: "tether-test", Host: "127.0.0.1", Port: route[i]},
			Routes:  server.RoutesFromStr(strings.Join(routes, ",")),
		}
		srv, err := server.NewServer(opts)
		if err == nil {
			go srv.Start()
			nc.servers = append(nc.servers, srv)
			if !srv.ReadyForConnections(10 * time.Second) {
				err = fmt.Errorf("nats %d not ready on ports %d/%d", i, client[i], route[i])
			}
		}
		if err != nil {
			for _, s := range nc.servers {
				s.Shutdown()
				s.WaitForShutdown()
			}
			return nil, err
		}
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", client[i]))
	}
	nc.URL = strings.Join(urls, ",")
	return nc, nil
}

func startNATSCluster(t *testing.T) *NATSCluster {
	t.Helper()
	// The ports are picked free before the servers bind them (every server
	// must know its routes up front), so another process can take one in
	// between; a server that cannot listen never becomes ready, and the
	// whole cluster is tried again on fresh ports.
	var nc *NATSCluster
	for attempt := 1; nc == nil; attempt++ {
		var err error
		if nc, err = tryNATSCluster(t); err != nil {
			if attempt == 3 {
				t.Fatal(err)
			}
			t.Logf("%v; retrying on other ports", err)
		}
	}
	t.Cleanup(func() {
		for _, s := range nc.servers {
			s.Shutdown()
			s.WaitForShutdown()
		}
	})
	// JetStream is usable once the cluster elected a meta leader and can
	// place a replicated stream.
	conn, err := nats.Connect(nc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, _ := jetstream.New(conn)
	testkit.Eventually(t, "a JetStream cluster", func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe"}, Replicas: 3, Storage: jetstream.MemoryStorage})
		return err == nil
	})
	return nc
}

// Proc is a running `tether serve` process.
type Proc struct {
	Name, HTTP, WS string
	args           []string
	cmd            *exec.Cmd
	log            *testkit.SyncBuffer
	exited         chan struct{}
}

func startTether(t *testing.T, nc *NATSCluster, name, ip string, extra ...string) *Proc {
	t.Helper()
	p := newTether(t, nc, name, ip, extra...)
	p.start(t)
	return p
}

// newTether prepares a `tether serve` process on the cluster without
// starting it.
func newTether(t *testing.T, nc *NATSCluster, name, ip string, extra ...string) *Proc {
	t.Helper()
	port := freePort(t, ip)
	addr := fmt.Sprintf("%s:%d", ip, port)
	args := append([]string{"serve", "--addr", addr, "--node-name", name, "--nats-url", nc.URL,
		"--jwt-secret", testkit.Secret, "--data-dir", t.TempDir(), "--replicas", "3",
		"--cluster-heartbeat", "200ms", "--shutdown-timeout", "5s"}, extra...)
	p := &Proc{Name: name, HTTP: "http://" + addr, WS: "ws://" + addr, args: args, log: &testkit.SyncBuffer{}}
	t.Cleanup(func() {
		p.Stop(t, syscall.SIGTERM)
		if t.Failed() {
			t.Logf("%s log:\n%s", name, p.log.String())
		}
	})
	return p
}

// Restart stops the process with SIGTERM and starts it again with the same
// address, name and data directory.
func (p *Proc) Restart(t *testing.T) {
	t.Helper()
	p.Stop(t, syscall.SIGTERM)
	p.start(t)
}

func (p *Proc) start(t *testing.T) {
	t.Helper()
	p.launch(t)
	p.waitReady(t)
}

// launch starts the process without waiting for it to be ready.
func (p *Proc) launch(t *testing.T) {
	t.Helper()
	cmd := exec.Command(tetherBinary(t), p.args...)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}
	cmd.Stdout, cmd.Stderr = p.log, p.log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	exited := p.exited
	go func() { _ = cmd.Wait(); close(exited) }()
}

// waitReady waits until the process answers /readyz with 200.
func (p *Proc) waitReady(t *testing.T) {
	t.Helper()
	exited, name := p.exited, p.Name
	// A node on a fresh three-server cluster creates its streams and
	// buckets (three replicas each, about 2 s apiece) before it is ready.
	testkit.EventuallyWithin(t, time.Minute, name+" ready", func() bool {
		select {
		case <-exited:
			t.Fatalf("%s exited:\n%s", name, p.log.String())
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, p.HTTP+"/readyz", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
}

// Stop signals the process and waits for it (SIGKILL after 10 s).
func (p *Proc) Stop(t *testing.T, sig syscall.Signal) {
	if p.cmd == nil {
		return
	}
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}

// A publish on any node reaches subscribers on every node, through the
// WebSocket and through the publish API.
func TestCrossNodePublish(t *testing.T) {
	nc := startNATSCluster(t)
	a := startTether(t, nc, "a", "127.0.0.2")
	b := startTether(t, nc, "b", "127.0.0.3")
	alice := testkit.Token(t, "alice", "admin")
	sub := testkit.Dial(t, a.WS+"/ws/agent", testkit.Bearer(alice))
	sub.Send(map[string]any{"type": "subscribe", "channel": "room:1"})
	sub.Expect("subscribed")
	sub.Send(map[string]any{"type": "subscribe", "channel": "user:bob"})
	sub.Expect("subscribed")

	pub := testkit.Dial(t, b.WS+"/ws/agent", testkit.Bearer(alice))
	pub.Send(map[string]any{"type": "publish", "channel": "room:1", "data": "from b", "id": 1})
	pub.Expect("published")
	if m := sub.Expect("message"); m["data"] != "from b" || m["from"] != "alice" {
		t.Fatalf("message = %v", m)
	}
	status, body := testkit.PostJSON(t, b.HTTP+"/api/publish", alice, map[string]any{"user": "bob", "data": "api on b"})
	if status != 200 {
		t.Fatalf("publish API: %d %v", status, body)
	}
	if m := sub.Expect("message"); m["data"] != "api on b" || m["channel"] != "user:bob" {
		t.Fatalf("message = %v", m)
	}
}

// Each node lists the others; a node killed with SIGKILL is seen down, and
// the milestones it was running become finished (interrupted).
func TestNodeDownIsNoticed(t *testing.T) {
	nc := startNATSCluster(t)
	a := startTether(t, nc, "a", "127.0.0.2")
	b := startTether(t, nc, "b", "127.0.0.3")
	c := startTether(t, nc, "c", "127.0.0.4")
	admin := testkit.Token(t, "ops", "admin")
	nodes := func() map[string]bool {
		_, body := testkit.Do(t, http.MethodGet, a.HTTP+"/api/cluster/nodes", admin, nil)
		up := map[string]bool{}
		list, _ := body["nodes"].([]any)
		for _, n := range list {
			m := n.(map[string]any)
			up[m["name"].(string)] = m["up"].(bool)
		}
		return up
	}
	testkit.Eventually(t, "a to see every node up", func() bool { n := nodes(); return n["a"] && n["b"] && n["c"] })
	testkit.Eventually(t, "c to see b up", func() bool { up, _ := nodeUp(c.HTTP, admin, "b"); return up })
	if status, _ := testkit.Do(t, http.MethodGet, a.HTTP+"/api/cluster/nodes", testkit.Token(t, "alice"), nil); status != 403 {
		t.Fatalf("non-admin: %d", status)
	}

	// A terminal runs on b.
	if status, body := testkit.PostJSON(t, b.HTTP+"/api/milestones", admin, map[string]any{"id": "on-b", "command": []string{"sleep", "100"}}); status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	if status, body := testkit.PostJSON(t, b.HTTP+"/api/milestones/on-b/start", admin, nil); status != 200 || body["node"] != "b" {
		t.Fatalf("start: %d %v", status, body)
	}

	// Both survivors watch for b's death at once, so that their verdicts
	// can be compared: with a 200 ms heartbeat and the default dead-after
	// of three heartbeats, each must call it between 0.4 s and 0.65 s after
	// the kill (plus polling and a busy machine's slack), and they must
	// agree to within a fraction of a heartbeat.
	seenDown := make(chan time.Duration, 2)
	stopPoll := make(chan struct{})
	defer close(stopPoll)
	b.Stop(t, syscall.SIGKILL)
	killed := time.Now()
	for _, p := range []*Proc{a, c} {
		go func() {
			for {
				select {
				case <-stopPoll:
					return
				case <-time.After(10 * time.Millisecond):
				}
				if up, ok := nodeUp(p.HTTP, admin, "b"); ok && !up {
					seenDown <- time.Since(killed)
					return
				}
			}
		}()
	}
	var took []time.Duration
	for range 2 {
		select {
		case d := <-seenDown:
			took = append(took, d)
		case <-time.After(testkit.Timeout):
			t.Fatal("b was not seen down by both survivors")
		}
	}
	t.Logf("b seen down %v and %v after SIGKILL", took[0].Round(time.Millisecond), took[1].Round(time.Millisecond))
	for _, d := range took {
		if d < 350*time.Millisecond || d > 3*time.Second {
			t.Errorf("b seen down %v after SIGKILL, want about 0.4-0.65 s", d)
		}
	}
	if spread := (took[1] - took[0]).Abs(); spread > 400*time.Millisecond {
		t.Errorf("survivors disagree by %v", spread)
	}
	testkit.Eventually(t, "on-b interrupted", func() bool {
		_, m := testkit.Do(t, http.MethodGet, a.HTTP+"/api/milestones/on-b", admin, nil)
		return m["status"] == "finished" && m["reason"] == "interrupted"
	})
}

// The per-user connection limit counts connections on every node.
func TestConnectionLimitAcrossNodes(t *testing.T) {
	nc := startNATSCluster(t)
	a := startTether(t, nc, "a", "127.0.0.2", "--max-connections-per-user", "2")
	b := startTether(t, nc, "b", "127.0.0.3", "--max-connections-per-user", "2")
	tok := testkit.Token(t, "alice")
	first := testkit.Dial(t, a.WS+"/ws/agent", testkit.Bearer(tok))
	testkit.Dial(t, b.WS+"/ws/agent", testkit.Bearer(tok))
	for _, p := range []*Proc{a, b} {
		if status, body := testkit.DialBody(t, p.WS+"/ws/agent", testkit.Bearer(tok)); status != 429 || body["error"] != "too_many_connections" {
			t.Fatalf("third connection on %s: %d %v", p.Name, status, body)
		}
	}
	first.C.CloseNow()
	testkit.Eventually(t, "a slot freed on the other node", func() bool {
		c, _, err := testkit.TryDial(t, b.WS+"/ws/agent", testkit.Bearer(tok))
		if err == nil {
			c.C.CloseNow()
		}
		return err == nil
	})
}

// A terminal whose PTY runs on a typed into and read from another node,
// with the same replay, since and exit semantics, including a 1 MiB burst
// received complete.
func TestTerminalAcrossNodes(t *testing.T) {
	nc := startNATSCluster(t)
	a := startTether(t, nc, "a", "127.0.0.2")
	b := startTether(t, nc, "b", "127.0.0.3")
	admin := testkit.Token(t, "ops", "admin")
	mk := func(id string, cmd ...string) {
		t.Helper()
		if status, body := testkit.PostJSON(t, a.HTTP+"/api/milestones", admin, map[string]any{"id": id, "command": cmd}); status != 201 {
			t.Fatalf("create: %d %v", status, body)
		}
		if status, body := testkit.PostJSON(t, a.HTTP+"/api/milestones/"+id+"/start", admin, nil); status != 200 || body["node"] != "a" {
			t.Fatalf("start: %d %v", status, body)
		}
	}
	mk("cat", "sh", "-c", "stty -echo; echo ready; exec cat")
	local := testkit.Dial(t, a.WS+"/api/milestones/cat/terminal", testkit.Bearer(admin))
	local.Expect("status")
	remote := testkit.Dial(t, b.WS+"/api/milestones/cat/terminal", testkit.Bearer(admin))
	st := remote.Expect("status")
	if st["pid"].(float64) <= 0 || st["clients"] != float64(2) {
		t.Fatalf("status via b = %v", st)
	}
	var seen string
	readUntil := func(c *testkit.Client, want string) {
		t.Helper()
		got := ""
		for !strings.Contains(got, want) {
			m := c.Read()
			if m["type"] == "output" || m["type"] == "replay" {
				got += m["data"].(string)
				if c == remote {
					seen = fmt.Sprint(m["offset"])
				}
			}
		}
	}
	readUntil(remote, "ready\r\n")
	remote.Send(map[string]any{"type": "input", "data": "typed on b\n"})
	readUntil(remote, "typed on b\r\n")
	readUntil(local, "typed on b\r\n")
	remote.Send(map[string]any{"type": "resize", "cols": 100, "rows": 33})
	for _, c := range []*testkit.Client{remote, local} {
		for {
			m := c.Read()
			if m["type"] == "size" {
				if m["cols"] != float64(100) || m["rows"] != float64(33) {
					t.Fatalf("size = %v", m)
				}
				break
			}
		}
	}
	remote.Send(map[string]any{"type": "signal", "signal": "SIGBOGUS", "id": 9})
	for {
		// The client that resized also gets the screen again at its size.
		m := remote.Read()
		if m["type"] == "replay" {
			continue
		}
		if m["type"] != "error" || m["code"] != "invalid_signal" {
			t.Fatalf("error = %v", m)
		}
		break
	}
	// Reconnect through b with since: exactly what was missed.
	remote.C.CloseNow()
	local.Send(map[string]any{"type": "input", "data": "while away\n"})
	readUntil(local, "while away\r\n")
	back := testkit.Dial(t, b.WS+"/api/milestones/cat/terminal?since="+seen, testkit.Bearer(admin))
	back.Expect("status")
	// The resize at the offset it resumes from comes again, in the stream.
	if m := back.Expect("size"); m["cols"] != float64(100) || m["rows"] != float64(33) {
		t.Fatalf("size via b: %v", m)
	}
	if m := back.Expect("output"); m["data"] != "while away\r\n" {
		t.Fatalf("since via b: %v", m)
	}

	// 1 MiB through the relay, complete to the last byte, then exit.
	raw := make([]byte, 3<<18)
	for i := range raw {
		raw[i] = byte(i * 7)
	}
	want := base64.StdEncoding.EncodeToString(raw)
	file := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(file, []byte(want), 0o644); err != nil {
		t.Fatal(err)
	}
	mk("big", "sh", "-c", "stty raw -echo; sleep 0.2; cat "+file)
	c := testkit.Dial(t, b.WS+"/api/milestones/big/terminal?since=0", testkit.Bearer(admin))
	c.Expect("status")
	var got strings.Builder
	for {
		m := c.Read()
		if m["type"] == "exit" {
			if m["code"] != float64(0) || m["offset"] != float64(len(want)) {
				t.Fatalf("exit = %v", m)
			}
			break
		}
		if m["type"] == "output" {
			got.WriteString(m["data"].(string))
		}
	}
	if got.String() != want {
		t.Fatalf("got %d bytes through the relay, want %d", got.Len(), len(want))
	}
	c.ExpectClose(1000)
}

// When the node running a PTY is killed, clients attached through other
// nodes get a clear close and the milestone is finished (interrupted).
func TestTerminalHostKilled(t *testing.T) {
	nc := startNATSCluster(t)
	a := startTether(t, nc, "a", "127.0.0.2")
	b := startTether(t, nc, "b", "127.0.0.3")
	admin := testkit.Token(t, "ops", "admin")
	if status, body := testkit.PostJSON(t, a.HTTP+"/api/milestones", admin, map[string]any{"id": "s", "command": []string{"sleep", "100"}}); status != 201 {
		t.Fatalf("create: %d %v", status, body)
	}
	testkit.PostJSON(t, a.HTTP+"/api/milestones/s/start", admin, nil)
	c := testkit.Dial(t, b.WS+"/api/milestones/s/terminal", testkit.Bearer(admin))
	c.Expect("status")
	a.Stop(t, syscall.SIGKILL)
	for {
		m := c.Read()
		if m["type"] == "error" {
			if m["code"] != "node_down" {
				t.Fatalf("error = %v", m)
			}
			break
		}
	}
	if reason := c.ExpectClose(4004); reason != "node_down" {
		t.Fatalf("reason %q", reason)
	}
	testkit.Eventually(t, "the milestone interrupted", func() bool {
		_, m := testkit.Do(t, http.MethodGet, b.HTTP+"/api/milestones/s", admin, nil)
		return m["status"] == "finished" && m["reason"] == "interrupted"
	})
}

// nodeUp asks the node at base whether it sees the named node up; ok is
// false when it could not tell. Safe to call from any goroutine.
func nodeUp(base, tok, name string) (up, ok bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+"/api/cluster/nodes", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false, false
	}
	defer resp.Body.Close()
	var body struct {
		Nodes []struct {
			Name string `json:"name"`
			Up   bool   `json:"up"`
		} `json:"nodes"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(resp.Body).Decode(&body) != nil {
		return false, false
	}
	for _, n := range body.Nodes {
		if n.Name == name {
			return n.Up, true
		}
	}
	return false, false
}

// Three nodes started at the same moment on a fresh NATS cluster all come
// up: they create Tether's streams and buckets together, and each sees
// the others.
func TestNodesStartTogether(t *testing.T) {
	nc := startNATSCluster(t)
	procs := []*Proc{newTether(t, nc, "a", "127.0.0.2"), newTether(t, nc, "b", "127.0.0.3"), newTether(t, nc, "c", "127.0.0.4")}
	for _, p := range procs {
		p.launch(t)
	}
	for _, p := range procs {
		p.waitReady(t)
	}
	admin := testkit.Token(t, "ops", "admin")
	for _, p := range procs {
		for _, other := range []string{"a", "b", "c"} {
			testkit.Eventually(t, p.Name+" to see "+other+" up", func() bool {
				up, _ := nodeUp(p.HTTP, admin, other)
				return up
			})
		}
	}
}
