package runtime

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the run if any test leaves a goroutine behind: servers,
// stats clients, signal watchers and pooled connections must all stop.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
