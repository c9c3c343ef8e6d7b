package cli_test

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/grpcplay/grpcplay/internal/cli"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// Every listen address is checked before any server starts, and a bad one
// is a usage error that names its flag.
func TestListenAddrsAreChecked(t *testing.T) {
	// Every port but the bad one stays on loopback port 0. Clipped, so that
	// each case's append makes its own copy.
	backend := []string{"backend", "--grpc-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"}
	serve := slices.Clip(append([]string{"serve", "--http-addr", "127.0.0.1:0"}, backend[1:]...))
	for _, tt := range []struct {
		args     []string
		vars     map[string]string
		inStderr string
	}{
		{append(serve, "--http-addr", "bogus"), nil, `--http-addr "bogus": want host:port or :port`},
		{append(serve, "--rest-addr", "bogus"), nil, `--rest-addr "bogus"`},
		{append(backend, "--grpc-addr", "localhost"), nil, `--grpc-addr "localhost"`},
		{append(backend, "--grpc-addr", ""), nil, "--grpc-addr must not be empty"},
		{[]string{"frontend", "--http-addr", ":99999"}, nil, `--http-addr ":99999": the port must be a number from 0 to 65535`},
		{append(backend, "--metrics-addr", "localhost:http"), nil, `--metrics-addr "localhost:http"`},
		{[]string{"serve", "--http-addr", "127.0.0.1:0", "--grpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0"}, map[string]string{"GRPCPLAY_REST_ADDR": "8080"}, `--rest-addr "8080"`},
	} {
		t.Run(fmt.Sprint(tt.args[len(tt.args)-2:], tt.vars), func(t *testing.T) {
			// A cancelled context: a command that wrongly starts stops at once.
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			var out, errOut bytes.Buffer
			code := cli.Execute(ctx, tt.args, &out, &errOut, env(tt.vars))
			stdout, stderr := out.String(), errOut.String()
			if code != 2 || !strings.Contains(stderr, tt.inStderr) {
				t.Fatalf("exit %d, stderr %q; want exit 2 naming %q", code, stderr, tt.inStderr)
			}
			if stdout != "" || strings.Contains(stderr, "listening") {
				t.Errorf("a server started before the bad address was refused: stdout %q, stderr %q", stdout, stderr)
			}
		})
	}
	// Empty turns the optional listeners off, and is no error.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if code := cli.Execute(ctx, append(backend, "--rest-addr", "", "--metrics-addr", ""), &bytes.Buffer{}, &bytes.Buffer{}, env(nil)); code != 0 {
		t.Errorf("backend with --rest-addr and --metrics-addr empty exited %d", code)
	}
}

// A listen failure names its flag: "address already in use" alone does not
// say which of serve's four ports is taken.
func TestListenErrorNamesTheFlag(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, flag := range []string{"rest-addr", "metrics-addr", "http-addr"} {
		t.Run(flag, func(t *testing.T) {
			args := []string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--" + flag, addr}
			code, _, stderr := execute(t, nil, args...)
			want := "--" + flag + " " + addr + ": listen tcp " + addr
			if code != 1 || !strings.Contains(stderr, want) || !strings.Contains(stderr, "address already in use") {
				t.Fatalf("exit %d, stderr %q; want 1 and %q", code, stderr, want)
			}
		})
	}
}

// /compare lets any visitor start seconds of load: on in serve, off in the
// frontend alone, and --compare-page (or its env) says otherwise.
func TestComparePageFlag(t *testing.T) {
	for _, tt := range []struct {
		name string
		vars map[string]string
		args []string
		want bool
	}{
		{"serve", nil, []string{"serve"}, true},
		{"serve off", nil, []string{"serve", "--compare-page=false"}, false},
		{"serve off by env", map[string]string{"GRPCPLAY_COMPARE_PAGE": "false"}, []string{"serve"}, false},
		{"frontend", nil, []string{"frontend"}, false},
		{"frontend on", nil, []string{"frontend", "--compare-page"}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			args := append(tt.args, "--http-addr", "127.0.0.1:0")
			if tt.args[0] == "serve" {
				args = append(args, "--grpc-addr", "127.0.0.1:0")
			} else {
				args = append(args, "--backend", "127.0.0.1:1")
			}
			m, _ := start(t, tt.vars, args...)
			resp, page := testkit.Get(t, m.HTTPURL()+"/compare")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("GET /compare = %d", resp.StatusCode)
			}
			if got := strings.Contains(page, `id="compare-form"`); got != tt.want {
				t.Errorf("/compare offers a run: %v, want %v", got, tt.want)
			}
			if !tt.want {
				// The page says why, and a run is refused: nothing starts.
				resp, err := http.Post(m.HTTPURL()+"/compare/run", "application/x-www-form-urlencoded", nil)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusNotImplemented {
					t.Errorf("POST /compare/run = %d, want 501", resp.StatusCode)
				}
			}
		})
	}
}
