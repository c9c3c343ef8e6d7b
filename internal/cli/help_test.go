package cli_test

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/grpcplay/grpcplay/internal/cli"
	"github.com/grpcplay/grpcplay/internal/configdoc"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// singleDash is a flag of more than one letter shown with one dash.
var singleDash = regexp.MustCompile(`(?m)^  -[^-\s][^\s]`)

// Each command's help opens with what the command does and shows its flags
// as the docs write them.
func TestHelpSaysWhatEachCommandDoes(t *testing.T) {
	for _, cmd := range configdoc.Commands {
		code, stdout, stderr := execute(t, nil, cmd, "--help")
		if code != 0 || stderr != "" {
			t.Errorf("%s --help: exit %d, stderr %q", cmd, code, stderr)
		}
		first, rest, _ := strings.Cut(stdout, "\n")
		if purpose, ok := strings.CutPrefix(first, "grpcplay "+cmd+": "); !ok || len(purpose) < 10 || !strings.HasSuffix(purpose, ".") {
			t.Errorf("%s --help begins %q; want grpcplay %s: and what it does", cmd, first, cmd)
		}
		if !strings.Contains(rest, "\nUsage: grpcplay "+cmd) {
			t.Errorf("%s --help has no usage line:\n%s", cmd, stdout)
		}
		if m := singleDash.FindString(stdout); m != "" {
			t.Errorf("%s --help shows %q with one dash", cmd, m)
		}
	}
	_, stdout, _ := execute(t, nil, "call", "--help")
	if !strings.Contains(stdout, "\n  --backend string\n") || !strings.Contains(stdout, "\n  -o string\n") {
		t.Errorf("call --help does not show --backend and -o as typed:\n%s", stdout)
	}
	// A command without flags says nothing of flags.
	_, stdout, _ = execute(t, nil, "version", "--help")
	if want := "grpcplay version: print the version.\n\nUsage: grpcplay version\n"; stdout != want {
		t.Errorf("version --help = %q, want %q", stdout, want)
	}
}

// closedAddr is a loopback address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	lis := testkit.Listen(t)
	addr := lis.Addr().String()
	lis.Close()
	return addr
}

// A call that cannot reach its backend says why and what to do: start one,
// or point --backend at it; at an HTTP port, that it is one (not TLS).
func TestCallHintsAtTheBackendAddress(t *testing.T) {
	addr := closedAddr(t)
	code, _, stderr := execute(t, nil, "call", "--backend", addr, "hello", "x")
	if code != 1 || !strings.Contains(stderr, "nothing listens on "+addr) || !strings.Contains(stderr, "grpcplay serve") || !strings.Contains(stderr, "--backend") {
		t.Errorf("call with nothing listening: exit %d, stderr %q", code, stderr)
	}

	page := httptest.NewServer(http.NotFoundHandler())
	defer page.Close()
	httpAddr := page.Listener.Addr().String()
	code, _, stderr = execute(t, nil, "call", "--backend", httpAddr, "hello", "x")
	if code != 1 || !strings.Contains(stderr, httpAddr+" answers HTTP/1.1, not gRPC") || !strings.Contains(stderr, "gRPC port") || strings.Contains(stderr, "TLS") {
		t.Errorf("call to an HTTP port: exit %d, stderr %q", code, stderr)
	}
}

// syncBuffer is a bytes.Buffer that the servers' log may write while the
// test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runFrontend starts `grpcplay frontend` against backend, stops it, and
// returns what it logged.
func runFrontend(t *testing.T, backend string) string {
	t.Helper()
	var log syncBuffer
	m := cli.NewMain(io.Discard, &log, env(nil))
	if err := m.ParseFlags([]string{"frontend", "--http-addr", "127.0.0.1:0", "--backend", backend}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	return log.String()
}

// frontend warns at start when it cannot reach its backend, with the hint;
// with a backend, it starts without a warning.
func TestFrontendWarnsWhenItsBackendIsUnreachable(t *testing.T) {
	addr := closedAddr(t)
	log := runFrontend(t, addr)
	if !strings.Contains(log, "level=WARN") || !strings.Contains(log, "backend unreachable") || !strings.Contains(log, "nothing listens on "+addr) {
		t.Errorf("frontend with nothing at %s logged:\n%s", addr, log)
	}

	m := startServe(t, nil)
	if log := runFrontend(t, m.GRPCAddr()); strings.Contains(log, "level=WARN") {
		t.Errorf("frontend with a backend warned:\n%s", log)
	}
}
