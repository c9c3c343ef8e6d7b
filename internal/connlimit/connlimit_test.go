package connlimit_test

import (
	"syscall"
	"testing"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/internal/connlimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// The cap itself is shown on the real binary, by the descriptors it holds
// under a flood of idle connections: reliability's TestHostileIdleConnections.

// Share takes its part of the soft descriptor limit, never over the ceiling.
func TestShare(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if got, want := connlimit.Share(8, 1<<30), int(lim.Cur)/8; got != want {
		t.Errorf("Share(8, large) = %d, want %d of a soft limit of %d", got, want, lim.Cur)
	}
	if got := connlimit.Share(8, 3); got != 3 {
		t.Errorf("Share(8, 3) = %d, want the ceiling 3", got)
	}
}
