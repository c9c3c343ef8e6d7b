package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/internal/cli"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

func TestMain(m *testing.M) {
	// Before any test runs gRPC code: see grpclog.go.
	cli.InstallGRPCLog()
	goleak.VerifyTestMain(m)
}

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

// startServe runs `grpcplay serve` in-process on loopback port 0.
func startServe(t *testing.T, vars map[string]string, extra ...string) *cli.Main {
	t.Helper()
	var stdout bytes.Buffer
	m := cli.NewMain(&stdout, io.Discard, env(vars))
	args := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0"}, extra...)
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := m.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	// One line names every address serve opened.
	for _, addr := range []string{m.HTTPURL(), "gRPC backend on " + m.GRPCAddr(), m.RESTURL(), m.MetricsURL()} {
		if addr != "" && !strings.Contains(stdout.String(), addr) {
			t.Errorf("serve printed %q, want it to show %s", stdout.String(), addr)
		}
	}
	return m
}

// execute runs one whole command as main would, capturing its output.
func execute(t *testing.T, vars map[string]string, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = cli.Execute(t.Context(), args, &out, &errOut, env(vars))
	return code, out.String(), errOut.String()
}

func TestServeShowsThePostsPage(t *testing.T) {
	m := startServe(t, nil)
	resp, body := testkit.Get(t, m.HTTPURL()+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d:\n%s", resp.StatusCode, body)
	}
	for _, want := range []string{"Hello Gonzalo!", "name 10", "name 5"} {
		if !strings.Contains(body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}

func TestCall(t *testing.T) {
	m := startServe(t, nil)
	backend := []string{"--backend", m.GRPCAddr()}
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"hello", "Gonzalo"}, "Hello Gonzalo!\n"},
		{[]string{"items", "3"}, "1\tname 1\n2\tname 2\n3\tname 3\n"},
		{[]string{"stream", "2"}, "1\tname 1\n2\tname 2\n"},
		{[]string{"items", "0"}, ""},
		{[]string{"hello", "Gonzalo", "-o", "json"}, `{"message":"Hello Gonzalo!"}` + "\n"},
		{[]string{"items", "2", "-o", "json"}, `{"items":[{"id":1,"name":"name 1"},{"id":2,"name":"name 2"}]}` + "\n"},
		{[]string{"stream", "2", "-o", "json"}, `{"id":1,"name":"name 1"}` + "\n" + `{"id":2,"name":"name 2"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append(append([]string{"call"}, backend...), tt.args...)
			code, stdout, stderr := execute(t, nil, args...)
			if code != 0 || stdout != tt.want {
				t.Fatalf("exit %d, stdout %q, stderr %q; want 0, %q", code, stdout, stderr, tt.want)
			}
		})
	}
}

func TestCallErrors(t *testing.T) {
	m := startServe(t, map[string]string{"GRPCPLAY_MAX_ITEMS": "5"})
	tests := []struct {
		args     []string
		code     int
		inStderr string
	}{
		{[]string{"items", "-1"}, 1, "InvalidArgument: length -1 is out of range: it must be between 0 and 5"},
		{[]string{"hello", strings.Repeat("x", 2000)}, 1, "limit is 1024 bytes"},
		{[]string{"items", "abc"}, 2, `"abc" is not a whole number`},
		{[]string{"stream", "99999999999"}, 2, "out of range"},
		{[]string{"frobnicate", "1"}, 2, "unknown call"},
		{[]string{"hello"}, 2, "want hello NAME"},
		{[]string{"hello", "x", "-o", "yaml"}, 2, "-o must be text or json"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			args := append([]string{"call", "--backend", m.GRPCAddr()}, tt.args...)
			code, stdout, stderr := execute(t, nil, args...)
			if code != tt.code || !strings.Contains(stderr, tt.inStderr) || stdout != "" {
				t.Fatalf("exit %d, stdout %q, stderr %q; want exit %d and stderr containing %q",
					code, stdout, stderr, tt.code, tt.inStderr)
			}
		})
	}
	// GRPCPLAY_MAX_ITEMS reached the backend that serve started.
	code, _, stderr := execute(t, nil, "call", "--backend", m.GRPCAddr(), "items", "6")
	if code != 1 || !strings.Contains(stderr, "between 0 and 5") {
		t.Fatalf("exit %d, stderr %q; want the env limit of 5", code, stderr)
	}
}

func TestCallFindsBackendFromThePostsEnvironment(t *testing.T) {
	m := startServe(t, nil)
	host, port, _ := strings.Cut(m.GRPCAddr(), ":")
	code, stdout, stderr := execute(t, map[string]string{"BACKEND_HOST": host, "BACKEND_PORT": port}, "call", "hello", "env")
	if code != 0 || stdout != "Hello env!\n" {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestCallUnreachableBackend(t *testing.T) {
	code, _, stderr := execute(t, nil, "call", "--backend", "127.0.0.1:1", "--timeout", "2s", "hello", "x")
	if code != 1 || !strings.Contains(stderr, "Unavailable") {
		t.Fatalf("exit %d, stderr %q; want 1 and Unavailable", code, stderr)
	}
}

func TestHealthcheck(t *testing.T) {
	m := startServe(t, nil)
	code, stdout, stderr := execute(t, nil, "healthcheck", "--grpc", m.GRPCAddr(), "--http", m.HTTPURL()+"/readyz")
	if code != 0 || stdout != "healthy\n" {
		t.Fatalf("healthy servers: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = execute(t, nil, "healthcheck", "--grpc", "127.0.0.1:1", "--timeout", "1s")
	if code != 1 || !strings.Contains(stderr, "127.0.0.1:1") {
		t.Fatalf("no server: exit %d, stderr %q; want 1 naming the address", code, stderr)
	}
	code, _, stderr = execute(t, nil, "healthcheck", "--http", m.HTTPURL()+"/no-such-page")
	if code != 1 || !strings.Contains(stderr, "404") {
		t.Fatalf("404: exit %d, stderr %q; want 1 naming the status", code, stderr)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		args     []string
		vars     map[string]string
		code     int
		inOutput string
	}{
		{nil, nil, 2, "no command given"},
		{[]string{"nope"}, nil, 2, `unknown command "nope"`},
		{[]string{"help"}, nil, 0, "grpcplay serve"},
		{[]string{"backend", "--max-items", "x"}, nil, 2, "not a whole number"},
		{[]string{"backend", "extra"}, nil, 2, "takes no arguments"},
		{[]string{"backend"}, map[string]string{"GRPCPLAY_GRACE": "soon"}, 2, "GRPCPLAY_GRACE"},
		{[]string{"frontend", "--log-level", "loud"}, nil, 2, "log-level"},
		{[]string{"backend", "--max-items", "-1"}, nil, 2, "max items -1 must be between 1 and 150000"},
		{[]string{"backend", "--max-items", "1000000"}, nil, 2, "4 MiB message limit"},
		{[]string{"serve", "--max-stream-items", "0"}, nil, 2, "max stream items 0 must be at least 1"},
		{[]string{"backend", "--max-connection-age", "0s"}, nil, 2, "--max-connection-age must be more than 0"},
		{[]string{"frontend", "--page-timeout", "-1s"}, nil, 2, "--page-timeout must be more than 0"},
		{[]string{"frontend", "--max-live-streams", "0"}, nil, 2, "--max-live-streams must be at least 1"},
		{[]string{"frontend", "--backend-refresh", "-2s"}, nil, 2, "--backend-refresh must not be negative"},
		{[]string{"call", "--timeout", "0s", "hello", "x"}, nil, 2, "--timeout must be more than 0"},
		{[]string{"serve", "--grace", "-1s"}, nil, 2, "--grace must not be negative"},
		{[]string{"frontend"}, map[string]string{"GRPCPLAY_TRUSTED_PROXIES": "10.0.0.0/8,proxy"}, 2, `"proxy" is neither a CIDR nor an IP address`},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.args), func(t *testing.T) {
			code, stdout, stderr := execute(t, tt.vars, tt.args...)
			if code != tt.code || !strings.Contains(stdout+stderr, tt.inOutput) {
				t.Fatalf("exit %d, output %q; want exit %d containing %q", code, stdout+stderr, tt.code, tt.inOutput)
			}
		})
	}
}

// Every setting and its default are documented by --help.
func TestHelpDocumentsEverySetting(t *testing.T) {
	for cmd, wants := range map[string][]string{
		// serve answers this machine only; the container commands listen on
		// every interface of their container.
		"serve":       {"-grpc-addr", "-http-addr", "-rest-addr", "GRPCPLAY_REST_ADDR", "default \"localhost:8080\"", "default \"localhost:9464\"", "-max-items", "-max-stream-items", "-max-name-bytes", "-page-timeout", "-grace", "-log-level", "default \"localhost:50051\"", "default \"localhost:5000\"", "-compare-page", "GRPCPLAY_COMPARE_PAGE", "default true"},
		"backend":     {"-grpc-addr", "GRPCPLAY_GRPC_ADDR", "-rest-addr", "GRPCPLAY_REST_ADDR", "default \":8080\"", "default \":9464\"", "default \":50051\"", "BACKEND_PORT", "-max-connection-age", "default 100000", "default 10000000", "default 1024"},
		"frontend":    {"-backend", "BACKEND_HOST", "dns:///localhost:50051", "-http-addr", "default \":5000\"", "-compare-page", "GRPCPLAY_COMPARE_PAGE", "-page-timeout", "-max-page-items", "-max-live-items", "-max-live-streams", "-backend-refresh", "GRPCPLAY_BACKEND_REFRESH", "-trusted-proxies", "GRPCPLAY_TRUSTED_PROXIES"},
		"call":        {"-backend", "-o", "hello NAME | items N | stream N", "default 10s"},
		"healthcheck": {"-grpc", "-http"},
	} {
		code, stdout, stderr := execute(t, nil, cmd, "--help")
		if code != 0 {
			t.Errorf("%s --help exit %d", cmd, code)
		}
		for _, want := range wants {
			if !strings.Contains(stdout+stderr, want) {
				t.Errorf("%s --help lacks %q", cmd, want)
			}
		}
	}
}

func TestServeStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan int)
	go func() {
		done <- cli.Execute(ctx, []string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0"}, io.Discard, io.Discard, env(nil))
	}()
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d after a graceful stop, want 0", code)
	}
}

func TestServeFailsWhenPortIsTaken(t *testing.T) {
	m := startServe(t, nil)
	code, _, stderr := execute(t, nil, "backend", "--grpc-addr", m.GRPCAddr(), "--rest-addr", "", "--metrics-addr", "")
	if code != 1 || !strings.Contains(stderr, "--grpc-addr "+m.GRPCAddr()+": listen tcp") || !strings.Contains(stderr, "address already in use") {
		t.Fatalf("exit %d, stderr %q; want 1 and the listen error", code, stderr)
	}
}

// A flag error is printed once, alone, with where to look: the usage
// would scroll it away.
func TestFlagErrorIsPrintedAlone(t *testing.T) {
	code, stdout, stderr := execute(t, nil, "backend", "--no-such-flag")
	want := "grpcplay backend: flag provided but not defined: --no-such-flag\nsee grpcplay backend --help\n"
	if code != 2 || stderr != want || stdout != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q; want exit 2 and stderr %q", code, stderr, stdout, want)
	}
	code, _, stderr = execute(t, nil, "call", "--timeout", "soon", "hello", "x")
	if code != 2 || !strings.HasPrefix(stderr, `grpcplay call: invalid value "soon" for flag --timeout`) || !strings.HasSuffix(stderr, "\nsee grpcplay call --help\n") {
		t.Fatalf("--timeout soon: exit %d, stderr %q", code, stderr)
	}
}

// The health check ignores the environment meant for the servers.
func TestHealthcheckIgnoresServerEnvironment(t *testing.T) {
	m := startServe(t, nil)
	code, _, stderr := execute(t, map[string]string{"GRPCPLAY_TIMEOUT": "0s", "GRPCPLAY_GRPC": "127.0.0.1:1"}, "healthcheck", "--grpc", m.GRPCAddr())
	if code != 0 {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}
