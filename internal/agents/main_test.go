package agents

import (
	"testing"

	"go.uber.org/goleak"
)

// Run starts goroutines per operation; none may outlive it.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
