package cli_test

import (
	"os"
	"runtime/debug"
	"testing"
)

// gcPercent reads the GC target, which only setting it returns.
func gcPercent() int {
	p := debug.SetGCPercent(100)
	debug.SetGCPercent(p)
	return p
}

// The server commands run at GOGC=200 when the environment does not say,
// and leave an operator's GOGC alone.
func TestServersSetTheirGCTargetUnlessGOGCIsSet(t *testing.T) {
	defer debug.SetGCPercent(gcPercent())

	t.Setenv("GOGC", "50")
	debug.SetGCPercent(50) // what the runtime made of it at start-up
	startServe(t, nil)
	if got := gcPercent(); got != 50 {
		t.Errorf("with GOGC=50 set, serve made the GC target %d, want 50 left as it was", got)
	}

	if err := os.Unsetenv("GOGC"); err != nil {
		t.Fatal(err)
	}
	debug.SetGCPercent(100)
	startServe(t, nil)
	if got := gcPercent(); got != 200 {
		t.Errorf("with GOGC unset, serve made the GC target %d, want 200", got)
	}
}
