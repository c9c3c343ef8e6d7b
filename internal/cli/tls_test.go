package cli_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/grpcplay/grpcplay/internal/cli"
	"github.com/grpcplay/grpcplay/internal/testkit"
	"github.com/grpcplay/grpcplay/internal/tlsconfig/tlstest"
)

// start runs one server command in-process, as main would, until the test
// ends. Every port it opens is on loopback and picked by the kernel.
func start(t *testing.T, vars map[string]string, args ...string) (*cli.Main, *bytes.Buffer) {
	t.Helper()
	if args[0] == "serve" || args[0] == "backend" {
		args = append(args, "--metrics-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0")
	}
	var stdout bytes.Buffer
	m := cli.NewMain(&stdout, io.Discard, env(vars))
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
	return m, &stdout
}

func wantPage(t *testing.T, url string) {
	t.Helper()
	resp, body := testkit.Get(t, url+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello Gonzalo!") {
		t.Fatalf("GET / = %d:\n%s", resp.StatusCode, body)
	}
}

// Separate backend, frontend and call, with mutual TLS, configured the way
// a deployment would: the backend by environment, the others by flags.
func TestMutualTLSBetweenCommands(t *testing.T) {
	ca := tlstest.NewCA(t, "grpcplay-test")
	srv, fe := ca.Server("backend"), ca.Client("frontend")
	be, _ := start(t, map[string]string{
		"GRPCPLAY_TLS_CERT":      srv.CertFile,
		"GRPCPLAY_TLS_KEY":       srv.KeyFile,
		"GRPCPLAY_TLS_CLIENT_CA": ca.CertFile,
	}, "backend", "--grpc-addr", "127.0.0.1:0")
	clientTLS := []string{"--backend", be.GRPCAddr(), "--backend-ca", ca.CertFile, "--backend-cert", fe.CertFile, "--backend-key", fe.KeyFile}

	front, _ := start(t, nil, append([]string{"frontend", "--http-addr", "127.0.0.1:0"}, clientTLS...)...)
	wantPage(t, front.HTTPURL())

	code, stdout, stderr := execute(t, nil, append([]string{"call", "hello", "mTLS"}, clientTLS...)...)
	if code != 0 || stdout != "Hello mTLS!\n" {
		t.Fatalf("call with a client certificate: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, stdout, stderr = execute(t, nil, append([]string{"healthcheck", "--grpc", be.GRPCAddr()}, clientTLS[2:]...)...)
	if code != 0 || stdout != "healthy\n" {
		t.Fatalf("healthcheck over mTLS: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	code, _, stderr = execute(t, nil, "call", "--backend", be.GRPCAddr(), "--backend-ca", ca.CertFile, "--timeout", "3s", "hello", "x")
	if code != 1 || !strings.Contains(stderr, "Unavailable") || !strings.Contains(stderr, "set --backend-cert and --backend-key") {
		t.Fatalf("call without a client certificate: exit %d, stderr %q; want 1, Unavailable and a hint", code, stderr)
	}
	code, _, stderr = execute(t, nil, "call", "--backend", be.GRPCAddr(), "--timeout", "3s", "hello", "x")
	if code != 1 || !strings.Contains(stderr, "Unavailable") || !strings.Contains(stderr, "the backend may serve TLS: set --backend-ca") {
		t.Fatalf("plaintext call: exit %d, stderr %q; want 1, Unavailable and a hint", code, stderr)
	}
	stranger := tlstest.NewCA(t, "someone-else")
	code, _, stderr = execute(t, map[string]string{"GRPCPLAY_BACKEND_CA": stranger.CertFile},
		append([]string{"call", "--timeout", "3s", "hello", "x"}, clientTLS[:2]...)...)
	if code != 1 || !strings.Contains(stderr, "certificate signed by unknown authority") || strings.Contains(stderr, "may require") {
		t.Fatalf("call trusting another CA: exit %d, stderr %q; want 1 and the verification error", code, stderr)
	}
}

// serve's frontend reaches its own TLS backend with no CA file: it trusts the
// certificate the backend presents.
func TestServeWithTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "grpcplay-test")
	srv := ca.Server("backend")
	m, printed := start(t, nil, "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--tls-cert", srv.CertFile, "--tls-key", srv.KeyFile)
	wantPage(t, m.HTTPURL())
	if !strings.Contains(printed.String(), ", TLS;") {
		t.Errorf("serve printed %q; want it to say the backend serves TLS", printed.String())
	}
	code, stdout, stderr := execute(t, nil, "call", "--backend", m.GRPCAddr(), "--backend-ca", ca.CertFile, "items", "2")
	if code != 0 || stdout != "1\tname 1\n2\tname 2\n" {
		t.Fatalf("call: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
}

func TestServeWithMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "grpcplay-test")
	srv, fe := ca.Server("backend"), ca.Client("frontend")
	m, _ := start(t, nil, "serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--tls-cert", srv.CertFile, "--tls-key", srv.KeyFile, "--tls-client-ca", ca.CertFile,
		"--backend-cert", fe.CertFile, "--backend-key", fe.KeyFile)
	wantPage(t, m.HTTPURL())
	// Only a client with a certificate from the CA gets through.
	code, _, stderr := execute(t, nil, "call", "--backend", m.GRPCAddr(), "--backend-ca", ca.CertFile, "--timeout", "3s", "hello", "x")
	if code != 1 {
		t.Fatalf("call without a client certificate: exit %d, stderr %q", code, stderr)
	}
}

func TestTLSUsageErrors(t *testing.T) {
	ca := tlstest.NewCA(t, "grpcplay-test")
	srv := ca.Server("backend")
	missing := t.TempDir() + "/missing.pem"
	tests := []struct {
		args     []string
		vars     map[string]string
		inStderr string
	}{
		{[]string{"backend", "--tls-cert", srv.CertFile}, nil, "needs both a certificate and its key"},
		{[]string{"backend", "--tls-cert", missing, "--tls-key", srv.KeyFile}, nil, "--tls-cert, --tls-key, --tls-client-ca: open " + missing + ": no such file or directory"},
		{[]string{"backend"}, map[string]string{"GRPCPLAY_TLS_CERT": srv.CertFile, "GRPCPLAY_TLS_KEY": ca.CertFile}, "certificate " + srv.CertFile + " with key " + ca.CertFile},
		{[]string{"backend", "--tls-cert", srv.CertFile, "--tls-key", srv.KeyFile, "--tls-client-ca", srv.KeyFile}, nil, "holds no PEM certificate"},
		{[]string{"frontend", "--backend-ca", missing}, nil, "--backend-ca, --backend-cert, --backend-key: open " + missing},
		{[]string{"call", "--backend-cert", srv.CertFile, "hello", "x"}, nil, "needs both the certificate and its key"},
		{[]string{"serve", "--backend-ca", ca.CertFile}, nil, "need its backend to serve TLS"},
		{[]string{"serve", "--tls-cert", srv.CertFile, "--tls-key", srv.KeyFile, "--tls-client-ca", ca.CertFile}, nil, "serve with --tls-client-ca needs --backend-cert and --backend-key"},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			code, _, stderr := execute(t, tt.vars, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.inStderr) {
				t.Fatalf("exit %d, stderr %q; want 2 and %q", code, stderr, tt.inStderr)
			}
		})
	}
}

func TestHelpDocumentsTLSSettings(t *testing.T) {
	for cmd, wants := range map[string][]string{
		"serve":       {"-tls-cert", "-tls-key", "-tls-client-ca", "-backend-ca", "-backend-cert", "-backend-key", "-backend-server-name"},
		"backend":     {"-tls-cert", "GRPCPLAY_TLS_CERT", "-tls-key", "-tls-client-ca", "GRPCPLAY_TLS_CLIENT_CA"},
		"frontend":    {"-backend-ca", "GRPCPLAY_BACKEND_CA", "-backend-cert", "-backend-key", "-backend-server-name"},
		"call":        {"-backend-ca", "-backend-cert", "-backend-key", "-backend-server-name"},
		"healthcheck": {"-backend-ca", "-backend-cert", "-backend-key"},
	} {
		_, stdout, stderr := execute(t, nil, cmd, "--help")
		for _, want := range wants {
			if !strings.Contains(stdout+stderr, want) {
				t.Errorf("%s --help lacks %q", cmd, want)
			}
		}
	}
}
