package backbone

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"testing/synctest"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func TestRetry(t *testing.T) {
	unavailable := &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "JetStream system temporarily unavailable"}
	full := &jetstream.APIError{Code: 500, ErrorCode: 10047, Description: "insufficient resources"}
	for _, tc := range []struct {
		name     string
		errs     []error // what each attempt returns; past the end, the last one
		want     error
		attempts int
		took     time.Duration // virtual time, exactly
	}{
		{"success", []error{nil}, nil, 1, 0},
		{"an election: no responders, then a stored write", []error{jetstream.ErrNoStreamResponse, nats.ErrNoResponders, fmt.Errorf("append: %w", unavailable), nil}, nil, 4, 20*time.Millisecond + 40*time.Millisecond + 80*time.Millisecond},
		{"a conflict is not retried", []error{jetstream.ErrKeyExists}, jetstream.ErrKeyExists, 1, 0},
		{"a full store is not retried", []error{full}, full, 1, 0},
		// 20+40+80+160+320 ms, then 500 ms at a time until the next wait
		// would pass the 20 s bound.
		{"bounded", []error{nats.ErrNoResponders}, nats.ErrNoResponders, 44, 620*time.Millisecond + 38*500*time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				start := time.Now()
				n := 0
				err := Retry(context.Background(), func(ctx context.Context) error {
					if _, ok := ctx.Deadline(); !ok {
						t.Error("an attempt without a deadline")
					}
					n++
					return tc.errs[min(n, len(tc.errs))-1]
				})
				if !errors.Is(err, tc.want) || (tc.want == nil) != (err == nil) {
					t.Errorf("err = %v, want %v", err, tc.want)
				}
				if n != tc.attempts {
					t.Errorf("%d attempts, want %d", n, tc.attempts)
				}
				if took := time.Since(start); took != tc.took {
					t.Errorf("took %v, want %v", took, tc.took)
				}
			})
		})
	}
}

// An attempt that hangs is cut off after attemptTimeout and tried again.
func TestRetryCutsOffAHungAttempt(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		start := time.Now()
		n := 0
		err := Retry(context.Background(), func(ctx context.Context) error {
			if n++; n == 1 {
				<-ctx.Done()
				return ctx.Err()
			}
			return nil
		})
		if err != nil || n != 2 {
			t.Fatalf("err %v after %d attempts", err, n)
		}
		if took := time.Since(start); took != attemptTimeout+20*time.Millisecond {
			t.Fatalf("took %v", took)
		}
	})
}

// A caller's own deadline ends the retries early.
func TestRetryHonoursTheCallersDeadline(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start := time.Now()
		err := Retry(ctx, func(context.Context) error { return nats.ErrNoResponders })
		if !errors.Is(err, nats.ErrNoResponders) {
			t.Fatalf("err = %v", err)
		}
		if took := time.Since(start); took > time.Second {
			t.Fatalf("took %v past a 1 s deadline", took)
		}
	})
}

func TestIsConflict(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want bool
	}{
		{jetstream.ErrKeyExists, true},
		{&jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequence}, true},
		{fmt.Errorf("update: %w", &jetstream.APIError{Code: 400, ErrorCode: jetstream.JSErrCodeStreamWrongLastSequenceConstant}), true},
		{nats.ErrTimeout, false},
		{nil, false},
	} {
		if got := IsConflict(tc.err); got != tc.want {
			t.Errorf("IsConflict(%v) = %v", tc.err, got)
		}
	}
}
