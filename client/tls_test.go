package client_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/testkit"
	"github.com/grpcplay/grpcplay/internal/tlsconfig"
	"github.com/grpcplay/grpcplay/internal/tlsconfig/tlstest"
)

func serverTLS(t *testing.T, files tlsconfig.Server) *tls.Config {
	t.Helper()
	cfg, err := files.Config()
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func clientTLS(t *testing.T, files tlsconfig.Client) client.Option {
	t.Helper()
	cfg, err := files.Config()
	if err != nil {
		t.Fatal(err)
	}
	return client.WithTLS(cfg)
}

// sayHello makes one call and returns its error.
func sayHello(t *testing.T, addr string, opts ...client.Option) error {
	t.Helper()
	msg, err := testkit.NewClient(t, addr, opts...).SayHello(t.Context(), "tls")
	if err == nil && msg != "Hello tls!" {
		t.Fatalf("SayHello = %q", msg)
	}
	return err
}

func wantRefused(t *testing.T, err error, why string) {
	t.Helper()
	if status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), why) {
		t.Fatalf("call = %v; want Unavailable saying %q", err, why)
	}
}

func TestTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "grpcplay-test")
	srv := ca.Server("backend")
	tlsBackend := backendtest.Start(t, backend.Config{TLS: serverTLS(t, tlsconfig.Server{Cert: srv.CertFile, Key: srv.KeyFile})})

	t.Run("plaintext by default", func(t *testing.T) {
		if err := sayHello(t, backendtest.Start(t, backend.Config{}).Addr); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("TLS verified by the CA", func(t *testing.T) {
		if err := sayHello(t, tlsBackend.Addr, clientTLS(t, tlsconfig.Client{CA: ca.CertFile})); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("server name override", func(t *testing.T) {
		// The certificate names localhost and 127.0.0.1, not "elsewhere".
		err := sayHello(t, tlsBackend.Addr, clientTLS(t, tlsconfig.Client{CA: ca.CertFile, ServerName: "elsewhere"}))
		wantRefused(t, err, "certificate is valid for localhost")
		if err := sayHello(t, tlsBackend.Addr, clientTLS(t, tlsconfig.Client{CA: ca.CertFile, ServerName: "localhost"})); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("wrong CA refused", func(t *testing.T) {
		other := tlstest.NewCA(t, "someone-else")
		err := sayHello(t, tlsBackend.Addr, clientTLS(t, tlsconfig.Client{CA: other.CertFile}))
		wantRefused(t, err, "certificate signed by unknown authority")
	})
	t.Run("plaintext client refused by TLS server", func(t *testing.T) {
		if err := sayHello(t, tlsBackend.Addr); status.Code(err) != codes.Unavailable {
			t.Fatalf("plaintext call to a TLS server = %v, want Unavailable", err)
		}
	})
	t.Run("TLS client refused by plaintext server", func(t *testing.T) {
		err := sayHello(t, backendtest.Start(t, backend.Config{}).Addr, clientTLS(t, tlsconfig.Client{CA: ca.CertFile}))
		wantRefused(t, err, "first record does not look like a TLS handshake")
	})
}

func TestMutualTLS(t *testing.T) {
	ca := tlstest.NewCA(t, "grpcplay-test")
	srv := ca.Server("backend")
	b := backendtest.Start(t, backend.Config{TLS: serverTLS(t, tlsconfig.Server{Cert: srv.CertFile, Key: srv.KeyFile, ClientCA: ca.CertFile})})

	t.Run("client with a certificate from the CA", func(t *testing.T) {
		frontend := ca.Client("frontend")
		if err := sayHello(t, b.Addr, clientTLS(t, tlsconfig.Client{CA: ca.CertFile, Cert: frontend.CertFile, Key: frontend.KeyFile})); err != nil {
			t.Fatal(err)
		}
	})
	// In TLS 1.3 the client's handshake ends before the server checks the
	// client's certificate, so the client sees either the server's alert,
	// "certificate required", or, when it was already writing, a closed
	// connection. Either way no call gets through.
	t.Run("client without a certificate refused", func(t *testing.T) {
		err := sayHello(t, b.Addr, clientTLS(t, tlsconfig.Client{CA: ca.CertFile}))
		wantRefused(t, err, "")
		t.Log(err)
	})
	// A client only offers a certificate from a CA the server asks for.
	t.Run("client certificate from another CA refused", func(t *testing.T) {
		stranger := tlstest.NewCA(t, "someone-else").Client("stranger")
		err := sayHello(t, b.Addr, clientTLS(t, tlsconfig.Client{CA: ca.CertFile, Cert: stranger.CertFile, Key: stranger.KeyFile}))
		wantRefused(t, err, "")
		t.Log(err)
	})
}
