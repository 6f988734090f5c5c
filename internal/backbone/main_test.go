package backbone

import (
	"testing"

	"go.uber.org/goleak"
)

// Start, Close and the retries of Ensure* run goroutines; none may outlive
// a test.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }
