package backbone

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsServer starts a standalone NATS server with JetStream on addr
// ("127.0.0.1:0" picks a port) and returns its client URL.
func natsServer(t *testing.T, addr string) (*server.Server, string) {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	if p == 0 {
		p = server.RANDOM_PORT
	}
	srv, err := server.NewServer(&server.Options{
		Host: host, Port: p, JetStream: true, StoreDir: t.TempDir(), NoSigs: true, NoLog: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() { srv.Shutdown(); srv.WaitForShutdown() })
	return srv, srv.ClientURL()
}

func start(t *testing.T, cfg Config) *Backbone {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// Starting a node creates and deletes no stream: the server removes an
// account's empty directories after a stream is deleted in a goroutine of
// its own, which raced with the creation of the next file-backed stream
// ("error creating store for stream", err_code 10049) when the start-up
// probe created and deleted one.
func TestStartDeletesNoStream(t *testing.T) {
	_, url := natsServer(t, "127.0.0.1:0")
	watch, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer watch.Close()
	events, err := watch.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.>")
	if err != nil {
		t.Fatal(err)
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	b := start(t, Config{URL: url, Name: "n1"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.EnsureStream(ctx, jetstream.StreamConfig{Name: "FILES", Subjects: []string{"files.>"}}); err != nil {
		t.Fatal(err)
	}
	var got []string
	for {
		m, err := events.NextMsg(2 * time.Second)
		if err != nil {
			break
		}
		got = append(got, m.Subject)
	}
	if want := []string{"$JS.EVENT.ADVISORY.STREAM.CREATED.FILES"}; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stream advisories %v, want %v", got, want)
	}
}

// Nodes that create the same stream and bucket at once all succeed, also
// while they disagree on the configuration (as during a rolling upgrade):
// the last update wins and nobody fails.
func TestEnsureConverges(t *testing.T) {
	_, url := natsServer(t, "127.0.0.1:0")
	const nodes = 8
	bbs := make([]*Backbone, nodes)
	for i := range bbs {
		bbs[i] = start(t, Config{URL: url, Name: fmt.Sprintf("n%d", i)})
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 2*nodes)
	for i, b := range bbs {
		wg.Go(func() {
			_, err := b.EnsureStream(ctx, jetstream.StreamConfig{
				Name: "EVENTS", Subjects: []string{"events.>"}, Description: fmt.Sprintf("version %d", i%2),
			})
			errs <- err
		})
		wg.Go(func() {
			_, err := b.EnsureKeyValue(ctx, jetstream.KeyValueConfig{
				Bucket: "STATE", Description: fmt.Sprintf("version %d", i%2),
			})
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	// A later start with yet another configuration updates it.
	st, err := bbs[0].EnsureStream(ctx, jetstream.StreamConfig{Name: "EVENTS", Subjects: []string{"events.>"}, MaxMsgs: 10})
	if err != nil {
		t.Fatal(err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.Config.MaxMsgs != 10 || info.Config.Description != "" {
		t.Fatalf("config not updated: max_msgs %d, description %q", info.Config.MaxMsgs, info.Config.Description)
	}
}

// A configuration JetStream refuses fails at once, not after retrying.
func TestEnsurePermanentError(t *testing.T) {
	b := start(t, Config{DataDir: t.TempDir(), Name: "n1"})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	began := time.Now()
	_, err := b.EnsureStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3})
	if err == nil || !strings.Contains(err.Error(), "err_code=10074") {
		t.Fatalf("err = %v, want replicas not supported (10074)", err)
	}
	if d := time.Since(began); d > 5*time.Second {
		t.Fatalf("took %v: a permanent error was retried", d)
	}
}

// A node started before its NATS server waits for it (logging why, and
// saying so in JetStreamState) and starts once the server is up.
func TestStartWaitsForNATS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	type result struct {
		b   *Backbone
		err error
	}
	done := make(chan result, 1)
	go func() {
		b, err := Start(ctx, Config{URL: "nats://" + addr, Name: "early", Logger: log})
		done <- result{b, err}
	}()
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(logs.String(), "waiting for jetstream") {
		if time.Now().After(deadline) {
			t.Fatalf("no 'waiting for jetstream' in the log: %q", logs.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	select {
	case r := <-done:
		t.Fatalf("Start returned before NATS was up: %v", r.err)
	default:
	}
	natsServer(t, addr)
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	defer r.b.Close()
	if s := r.b.JetStreamState(); s != "" || !r.b.Ready() {
		t.Fatalf("JetStreamState %q, Ready %v after start", s, r.b.Ready())
	}
}

type syncBuffer struct {
	mu sync.Mutex
	sb strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sb.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.sb.String()
}

// The embedded server never listens without credentials.
func TestListenRequiresCredentials(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Listen: "127.0.0.1:0", Name: "open"})
	if err == nil {
		b.Close()
		t.Fatal("started a listening server without credentials")
	}
	if want := "nats-listen requires credentials: a token or a user and password"; err.Error() != want {
		t.Fatalf("err = %q, want %q", err, want)
	}
}

// A write JetStream refuses for lack of storage (here its real store limit,
// set tiny) is ErrStorageFull, and the storage is reported full until a
// write is stored again.
func TestJetStreamStoreLimit(t *testing.T) {
	var changes []bool
	var mu sync.Mutex
	b := start(t, Config{DataDir: t.TempDir(), Name: "tiny", MaxStore: 256 << 10, OnStorageFull: func(full bool) {
		mu.Lock()
		changes = append(changes, full)
		mu.Unlock()
	}})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.EnsureStream(ctx, jetstream.StreamConfig{Name: "BIG", Subjects: []string{"big"}}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.EnsureStream(ctx, jetstream.StreamConfig{Name: "SMALL", Subjects: []string{"small"}, MaxMsgs: 1, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 16<<10)
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = b.JS.Publish(ctx, "big", payload)
		err = b.WriteResult(err)
	}
	if !errors.Is(err, ErrStorageFull) || !strings.Contains(err.Error(), "err_code=10023") {
		t.Fatalf("err = %v, want ErrStorageFull from JetStream's insufficient resources (10023)", err)
	}
	if full, why := b.StorageFull(); !full || !strings.Contains(why, "jetstream refuses writes") {
		t.Fatalf("StorageFull = %v %q", full, why)
	}
	// Memory storage has room: a stored write clears the state.
	_, err = b.JS.Publish(ctx, "small", []byte("x"))
	if err := b.WriteResult(err); err != nil {
		t.Fatal(err)
	}
	if full, _ := b.StorageFull(); full {
		t.Fatal("still full after a stored write")
	}
	mu.Lock()
	defer mu.Unlock()
	if fmt.Sprint(changes) != "[true false]" {
		t.Fatalf("OnStorageFull calls %v, want [true false]", changes)
	}
}
