package backbone

import (
	"context"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The leader's answers mean what nats.go's do: a deleted or purged key is
// not found, as is one never written, and a key that could match others
// is refused before it is sent.
func TestLeaderGetAnswers(t *testing.T) {
	bb := start(t, Config{DataDir: t.TempDir(), Name: "answers"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := bb.EnsureKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "ANSWERS", History: 5})
	if err != nil {
		t.Fatal(err)
	}
	leader := newLeaderKV(kv, bb.NC)
	put := func(key, value string) uint64 {
		rev, err := kv.Put(ctx, key, []byte(value))
		if err != nil {
			t.Fatal(err)
		}
		return rev
	}
	put("a", "1")
	rev := put("a", "2")
	put("gone", "x")
	if err := kv.Delete(ctx, "gone"); err != nil {
		t.Fatal(err)
	}
	put("purged", "x")
	if err := kv.Purge(ctx, "purged"); err != nil {
		t.Fatal(err)
	}
	e, err := leader.Get(ctx, "a")
	if err != nil || string(e.Value()) != "2" || e.Revision() != rev || e.Operation() != jetstream.KeyValuePut || e.Created().IsZero() {
		t.Fatalf("get a: %v %v", e, err)
	}
	for _, key := range []string{"gone", "purged", "never"} {
		if _, err := leader.Get(ctx, key); err != jetstream.ErrKeyNotFound {
			t.Errorf("get %s: %v, want ErrKeyNotFound", key, err)
		}
		if _, err := kv.Get(ctx, key); err != jetstream.ErrKeyNotFound {
			t.Errorf("nats.go's get %s: %v: the test's premise is wrong", key, err)
		}
	}
	for _, key := range []string{"*", "a.>", "", ".a", "a.", "a..b", "a b"} {
		if _, err := leader.Get(ctx, key); err != jetstream.ErrInvalidKey {
			t.Errorf("get %q: %v, want ErrInvalidKey", key, err)
		}
	}
}

// BenchmarkKVGet reads one record through the leader (what Tether does for
// replicated buckets) and through nats.go's direct get, on the embedded
// server.
func BenchmarkKVGet(b *testing.B) {
	bb, err := Start(context.Background(), Config{DataDir: b.TempDir(), Name: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	defer bb.Close()
	ctx := context.Background()
	kv, err := bb.EnsureKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "BENCH"})
	if err != nil {
		b.Fatal(err)
	}
	record := make([]byte, 600) // about an operation's record
	if _, err := kv.Put(ctx, "op_1", record); err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct {
		name string
		kv   jetstream.KeyValue
	}{{"leader", newLeaderKV(kv, bb.NC)}, {"direct", kv}} {
		b.Run(c.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.kv.Get(ctx, "op_1"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
