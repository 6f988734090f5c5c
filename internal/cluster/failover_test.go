package cluster_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/cluster"
	"github.com/tether-dev/tether/internal/testkit"
)

// failoverBound is the longest a publish, a state write or an event append
// may take, and events may pause, while one NATS server of three is lost:
// backbone.WriteBound, which covers a split vote's second election.
const failoverBound = backbone.WriteBound

// natsProc is one NATS server running as a process of its own.
type natsProc struct {
	name     string
	httpPort int
	cmd      *exec.Cmd
	exited   chan struct{}
	log      *testkit.SyncBuffer
}

// startNATSProcesses starts a three-node NATS cluster as three processes
// of this test binary (see cluster.NATSNodeEnv), so that one can be killed
// the way a crash kills it.
func startNATSProcesses(t *testing.T) *NATSCluster {
	t.Helper()
	if testing.Short() {
		t.Skip("runs a NATS cluster of three processes")
	}
	const size = 3
	specs := make([]cluster.NATSNodeSpec, size)
	var routes, urls []string
	for i := range specs {
		specs[i] = cluster.NATSNodeSpec{
			Name: fmt.Sprintf("nats-%d", i), Port: freePort(t, "127.0.0.1"), RoutePort: freePort(t, "127.0.0.1"),
			HTTPPort: freePort(t, "127.0.0.1"), StoreDir: t.TempDir(),
		}
		routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", specs[i].RoutePort))
		urls = append(urls, fmt.Sprintf("nats://127.0.0.1:%d", specs[i].Port))
	}
	nc := &NATSCluster{URL: strings.Join(urls, ",")}
	for _, spec := range specs {
		spec.Routes = routes
		b, _ := json.Marshal(spec)
		p := &natsProc{name: spec.Name, httpPort: spec.HTTPPort, exited: make(chan struct{}), log: &testkit.SyncBuffer{}}
		p.cmd = exec.Command(os.Args[0])
		p.cmd.Env = append(os.Environ(), cluster.NATSNodeEnv+"="+string(b))
		p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { _ = p.cmd.Wait(); close(p.exited) }()
		nc.procs = append(nc.procs, p)
	}
	t.Cleanup(func() {
		for _, p := range nc.procs {
			_ = p.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(10 * time.Second):
				_ = p.cmd.Process.Kill()
				<-p.exited
			}
			if t.Failed() && p.log.String() != "" {
				t.Logf("%s output:\n%s", p.name, p.log.String())
			}
		}
	})
	testkit.Eventually(t, "a JetStream cluster of three processes", func() bool {
		conn, err := nats.Connect(nc.URL, nats.Timeout(time.Second))
		if err != nil {
			return false
		}
		defer conn.Close()
		js, _ := jetstream.New(conn)
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err = js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: "PROBE", Subjects: []string{"probe"}, Replicas: 3, Storage: jetstream.MemoryStorage})
		return err == nil
	})
	return nc
}

// metaLeader returns the index of the process leading JetStream's
// metadata, from the servers' monitoring endpoints.
func (nc *NATSCluster) metaLeader(t *testing.T) int {
	t.Helper()
	for _, p := range nc.procs {
		select {
		case <-p.exited:
			continue
		default:
		}
		var jsz struct {
			Meta struct {
				Leader string `json:"leader"`
			} `json:"meta_cluster"`
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/jsz", p.httpPort))
		if err != nil {
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&jsz)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for i, q := range nc.procs {
			if q.name == jsz.Meta.Leader {
				return i
			}
		}
	}
	t.Fatal("no JetStream meta leader")
	return -1
}

// serving returns the index of the process the NATS client named name is
// connected to.
func (nc *NATSCluster) serving(t *testing.T, name string) int {
	t.Helper()
	for i, p := range nc.procs {
		var connz struct {
			Conns []struct {
				Name string `json:"name"`
			} `json:"connections"`
		}
		resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/connz", p.httpPort))
		if err != nil {
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&connz)
		resp.Body.Close()
		if err != nil {
			continue
		}
		for _, c := range connz.Conns {
			if c.Name == name {
				return i
			}
		}
	}
	t.Fatalf("no NATS server has a client named %q", name)
	return -1
}

// streamLeader returns the index of the process leading stream.
func (nc *NATSCluster) streamLeader(t *testing.T, stream string) int {
	t.Helper()
	conn, err := nats.Connect(nc.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, _ := jetstream.New(conn)
	ctx, cancel := context.WithTimeout(context.Background(), testkit.Timeout)
	defer cancel()
	st, err := js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil || info.Cluster == nil {
		t.Fatalf("stream %s info: %v", stream, err)
	}
	for i, p := range nc.procs {
		if p.name == info.Cluster.Leader {
			return i
		}
	}
	t.Fatalf("stream %s: leader %q is none of the servers", stream, info.Cluster.Leader)
	return -1
}

// kill ends NATS process i with SIGKILL: no leadership is handed over, and
// its clients and routes see their connections drop.
func (nc *NATSCluster) kill(i int) {
	p := nc.procs[i]
	_ = p.cmd.Process.Kill()
	<-p.exited
}

type timedResult struct {
	status int
	took   time.Duration
	body   string
}

// post sends one JSON POST with a deadline longer than failoverBound and
// reports its status and duration; safe from any goroutine.
func post(url, tok string, body any) timedResult {
	b, _ := json.Marshal(body)
	ctx, cancel := context.WithTimeout(context.Background(), 2*failoverBound)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Authorization", "Bearer "+tok)
	req.Header.Set("Content-Type", "application/json")
	start := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return timedResult{status: -1, took: time.Since(start), body: err.Error()}
	}
	defer resp.Body.Close()
	var out bytes.Buffer
	_, _ = out.ReadFrom(resp.Body)
	return timedResult{status: resp.StatusCode, took: time.Since(start), body: out.String()}
}

// Losing the NATS server that leads JetStream (and the message stream)
// while a backend publishes and creates milestones: every request still
// succeeds, within failoverBound, and every acknowledged message reaches a
// subscriber on another node exactly once.
func TestNATSServerLossDuringWrites(t *testing.T) {
	nc := startNATSProcesses(t)
	a := startTether(t, nc, "a", "127.0.0.2")
	b := startTether(t, nc, "b", "127.0.0.3")
	admin := testkit.Token(t, "backend", "admin")
	sub := testkit.Dial(t, b.WS+"/ws/agent", testkit.Bearer(testkit.Token(t, "alice", "admin")))
	sub.Send(map[string]any{"type": "subscribe", "channel": "room:failover"})
	sub.Expect("subscribed")

	// Each acknowledged publish must reach the subscriber on the other
	// node exactly once and in order; it is read right away so that the
	// subscriber never falls behind its send queue.
	var pubs, creates []timedResult
	var slowestDelivery time.Duration
	next := 0
	publish := func(i int) {
		r := post(a.HTTP+"/api/publish", admin, map[string]any{"channel": "room:failover", "data": i})
		pubs = append(pubs, r)
		if r.status != 200 {
			return
		}
		acked := time.Now()
		defer func() { slowestDelivery = max(slowestDelivery, time.Since(acked)) }()
		for {
			// A node's channel consumer lost with the server is recreated
			// by the hub (channels/follow.go) as soon as the stream has a
			// leader again.
			ctx, cancel := context.WithTimeout(context.Background(), failoverBound)
			_, b, err := sub.C.Read(ctx)
			cancel()
			if err != nil {
				t.Fatalf("message %d: %v", i, err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil || m["type"] != "message" {
				t.Fatalf("message %d: %s", i, b)
			}
			got := int(m["data"].(float64))
			if got < next {
				t.Fatalf("message %d delivered twice (after %d)", got, next-1)
			}
			next = got + 1
			if got == i {
				return
			}
		}
	}
	create := func(i int) {
		creates = append(creates, post(a.HTTP+"/api/milestones", admin, map[string]any{"id": fmt.Sprintf("m-%d", i), "command": []string{"true"}}))
	}
	for i := range 10 {
		publish(i)
		create(i)
	}
	// The worst server to lose leads the message stream: until the others
	// elect a new leader, nothing can be stored there.
	victim := nc.streamLeader(t, "TETHER_MESSAGES")
	t.Logf("killing nats-%d, the TETHER_MESSAGES leader (meta leader nats-%d, node a's server nats-%d)",
		victim, nc.metaLeader(t), nc.serving(t, "tether a"))
	nc.kill(victim)
	killed := time.Now()
	for i := 10; time.Since(killed) < 6*time.Second || i < 40; i++ {
		publish(i)
		create(i)
	}

	check := func(what string, rs []timedResult) {
		var worst time.Duration
		for i, r := range rs {
			if r.status != 200 && r.status != 201 {
				t.Errorf("%s %d: %d %s after %v", what, i, r.status, r.body, r.took)
			}
			worst = max(worst, r.took)
		}
		t.Logf("%s: %d requests, slowest %v", what, len(rs), worst.Round(time.Millisecond))
		if worst > failoverBound {
			t.Errorf("%s: slowest took %v, more than %v", what, worst, failoverBound)
		}
	}
	check("publish", pubs)
	check("milestone create", creates)
	t.Logf("delivery to a subscriber on the other node: slowest %v after the publish was acknowledged", slowestDelivery.Round(time.Millisecond))

}

// Losing the NATS server that leads the operation event stream while an
// operation runs and a watcher follows it from another node: the watcher
// receives the events in order, never one twice, and the final one; the
// longest pause is bounded.
func TestNATSServerLossDuringAnOperation(t *testing.T) {
	nc := startNATSProcesses(t)
	cfg := tickerConfig(t)
	a := startTether(t, nc, "a", "127.0.0.2", "--config", cfg)
	b := startTether(t, nc, "b", "127.0.0.3", "--config", cfg)
	admin := testkit.Token(t, "backend", "admin")
	const events = 200 // 50 ms apart: 10 s of progress, then the result
	startOp(t, a, admin, "op-failover", events)
	w := testkit.Dial(t, b.WS+"/ws/agent-guidance", testkit.Bearer(admin))
	w.Send(map[string]any{"type": "subscribe_operation", "operation_id": "op-failover", "after_seq": 0})
	w.Expect("operation_subscribed")

	var killed time.Time
	var longest time.Duration
	last := time.Now()
	for seq := 1; ; seq++ {
		// A read may wait out a whole election, longer than testkit's
		// usual deadline.
		ctx, cancel := context.WithTimeout(context.Background(), 2*failoverBound)
		_, b, err := w.C.Read(ctx)
		cancel()
		if err != nil {
			t.Fatalf("event %d: %v after %v", seq, err, time.Since(last))
		}
		var m map[string]any
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("event %d: %q", seq, b)
		}
		now := time.Now()
		// Progress that newer progress supersedes may be skipped for a
		// watcher that fell behind (the backlog after the election), so
		// seqs may jump, but never go back or repeat.
		got, _ := m["seq"].(float64)
		if int(got) < seq {
			t.Fatalf("event after %d: %v", seq-1, m)
		}
		seq = int(got)
		if !killed.IsZero() {
			longest = max(longest, now.Sub(last))
		}
		last = now
		if m["type"] == "operation_completed" {
			break
		}
		if m["type"] != "operation_started" && m["type"] != "operation_progress" {
			t.Fatalf("event %d: %v", seq, m)
		}
		if seq == 20 {
			victim := nc.streamLeader(t, "TETHER_OPERATIONS")
			t.Logf("killing nats-%d, the TETHER_OPERATIONS leader", victim)
			nc.kill(victim)
			killed = time.Now()
		}
	}
	t.Logf("longest pause between two events after the kill: %v", longest.Round(time.Millisecond))
	if longest > failoverBound {
		t.Errorf("events paused for %v, more than %v", longest, failoverBound)
	}
}
