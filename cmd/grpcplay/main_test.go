package main_test

import (
	"bufio"
	"context"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestSIGTERMDrainsAndExitsZero runs the real binary, because signal
// handling and the exit status only exist in a real process.
func TestSIGTERMDrainsAndExitsZero(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "grpcplay")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "backend", "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--rest-addr", "", "--grace", "30s")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := bufio.NewScanner(stderr)
	addrRE := regexp.MustCompile(`"backend listening" addr=(\S+)`)
	var addr string
	for addr == "" && lines.Scan() {
		if m := addrRE.FindStringSubmatch(lines.Text()); m != nil {
			addr = m[1]
		}
	}
	if addr == "" {
		t.Fatal("the backend never said where it listens")
	}
	drained := make(chan struct{})
	go func() { defer close(drained); _, _ = io.Copy(io.Discard, stderr) }()

	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 100_000
	got := 0
	for _, err := range c.GetStream(ctx, n) {
		if err != nil {
			t.Fatalf("stream failed after %d items: %v", got, err)
		}
		if got++; got == 1 {
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
		}
	}
	if got != n {
		t.Fatalf("stream in flight at SIGTERM got %d items, want %d", got, n)
	}
	<-drained
	if err := cmd.Wait(); err != nil {
		t.Fatalf("backend after SIGTERM: %v, want exit status 0", err)
	}
	if code := cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("exit status %d", code)
	}
	_ = os.Remove(bin)
}
