package cli_test

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/cli"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
	"github.com/grpcplay/grpcplay/internal/testkit"
	"github.com/grpcplay/grpcplay/internal/tlsconfig/tlstest"
)

func TestServeAnswersRESTFromTheSameBackend(t *testing.T) {
	m := startServe(t, nil, "--max-items", "5")
	resp, body := testkit.Get(t, m.RESTURL()+"/v1/items?length=2")
	if resp.StatusCode != http.StatusOK || strings.ReplaceAll(body, " ", "") != `{"items":[{"id":1,"name":"name1"},{"id":2,"name":"name2"}]}`+"\n" {
		t.Errorf("GET /v1/items?length=2 = %d %s", resp.StatusCode, body)
	}
	// The gateway shares the backend's limits: it is the same Service.
	if resp, body := testkit.Get(t, m.RESTURL()+"/v1/items?length=6"); resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "between 0 and 5") {
		t.Errorf("GET /v1/items?length=6 = %d %s; want 400 naming the backend's limit", resp.StatusCode, body)
	}
	// REST calls are counted in the backend's registry, next to its gRPC
	// calls. The count is made just before the handler returns.
	testkit.Eventually(t, 10*time.Second, func() error {
		backend := telemetrytest.Scrape(t, m.MetricsURL())
		ok := backend.Value("rest_requests_total", map[string]string{"route": "/v1/items", "code": "200"}) == 1 &&
			backend.Value("rest_requests_total", map[string]string{"route": "/v1/items", "code": "400"}) == 1
		return testkit.Failf(ok, "rest_requests_total on the backend's /metrics lacks the two REST calls")
	})
}

func TestRESTAddrFromTheEnvironmentAndOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		on   bool
	}{
		{"env", map[string]string{"GRPCPLAY_REST_ADDR": "127.0.0.1:0"}, nil, true},
		{"flag empty", nil, []string{"--rest-addr", ""}, false},
		{"an empty flag wins over the env", map[string]string{"GRPCPLAY_REST_ADDR": "127.0.0.1:0"}, []string{"--rest-addr="}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := cli.NewMain(io.Discard, io.Discard, env(tc.env))
			args := append([]string{"backend", "--grpc-addr", "127.0.0.1:0", "--metrics-addr", ""}, tc.args...)
			if err := m.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			if err := m.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := m.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			if on := m.RESTURL() != ""; on != tc.on {
				t.Fatalf("REST on = %v, want %v", on, tc.on)
			}
			if tc.on {
				if resp, body := testkit.Get(t, m.RESTURL()+"/v1/hello?name=REST"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello REST!") {
					t.Errorf("GET /v1/hello = %d %s", resp.StatusCode, body)
				}
			}
		})
	}
}

// With --tls-cert the REST face serves HTTPS with the backend's certificate,
// and with --tls-client-ca it requires a client certificate too.
func TestRESTServesTLSWhenTheBackendDoes(t *testing.T) {
	ca := tlstest.NewCA(t, "grpcplay-test")
	srv, fe := ca.Server("backend"), ca.Client("frontend")
	m, _ := start(t, nil, "backend", "--grpc-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0", "--metrics-addr", "",
		"--tls-cert", srv.CertFile, "--tls-key", srv.KeyFile, "--tls-client-ca", ca.CertFile)
	if !strings.HasPrefix(m.RESTURL(), "https://") {
		t.Fatalf("RESTURL %q, want https", m.RESTURL())
	}
	pem, err := os.ReadFile(ca.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	clientCert, err := tls.LoadX509KeyPair(fe.CertFile, fe.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		ok    bool
	}{
		{"with a client certificate", []tls.Certificate{clientCert}, true},
		{"without one", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			transport := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots, Certificates: tc.certs}}
			defer transport.CloseIdleConnections()
			resp, err := (&http.Client{Transport: transport}).Get(m.RESTURL() + "/v1/hello?name=TLS")
			if !tc.ok {
				if err == nil {
					resp.Body.Close()
					t.Fatal("the gateway answered a client without a certificate")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Hello TLS!") {
				t.Errorf("GET /v1/hello over TLS = %d %s", resp.StatusCode, body)
			}
		})
	}
}
