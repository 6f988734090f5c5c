package operations

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/tether-dev/tether/internal/backbone"
	"github.com/tether-dev/tether/internal/protocol"
)

// After a crash (the service never ended its operation), the next start on
// the same node fails the operation as interrupted, with the next seq.
func TestRecoverAfterCrash(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	bb, err := backbone.Start(ctx, backbone.Config{DataDir: t.TempDir(), Name: "crashy", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer bb.Close()
	cfg := Config{Node: "crashy", MaxAge: time.Hour, MaxBytes: 1 << 20}
	s, err := New(ctx, bb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	// What a crashed node leaves behind: a running record whose writer is
	// gone, with operation_started and one progress stored.
	rec := &stored{OperationRecord: protocol.OperationRecord{
		OperationID: "crashed-1", AgentID: "a", OperationType: "t", Owner: "alice", StartedAt: now(),
	}}
	if err := s.store.create(ctx, rec); err != nil {
		t.Fatal(err)
	}
	o := s.newOperation(rec, kindCommand)
	if _, err := o.begin(nil); err != nil {
		t.Fatal(err)
	}
	if err := o.progress(nil, "working", "", nil); err != nil {
		t.Fatal(err)
	}
	// Another node's running operation is not this node's to fail.
	other := &stored{OperationRecord: protocol.OperationRecord{OperationID: "elsewhere", Owner: "bob", Status: protocol.StatusRunning, Node: "other"}}
	if err := s.store.create(ctx, other); err != nil {
		t.Fatal(err)
	}
	_ = o.cancelSub.Unsubscribe()
	s.Close()

	s2, err := New(ctx, bb, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	got, err := s2.store.get(ctx, "crashed-1")
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != protocol.StatusFailed || got.Failure == nil || got.Failure.Code != protocol.CodeInterrupted || got.LastSeq != 3 {
		t.Fatalf("record = %+v", got)
	}
	last, err := s2.store.lastEvent(ctx, "crashed-1")
	if err != nil || last.Seq != 3 || last.Type != protocol.TypeOperationFailed {
		t.Fatalf("last event = %+v, %v", last, err)
	}
	if got, _ := s2.store.get(ctx, "elsewhere"); got.Status != protocol.StatusRunning {
		t.Fatalf("other node's record = %+v", got)
	}
}
