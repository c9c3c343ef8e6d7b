package tlsconfig_test

import (
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/internal/tlsconfig"
	"github.com/grpcplay/grpcplay/internal/tlsconfig/tlstest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestNothingSetMeansPlaintext(t *testing.T) {
	if cfg, err := (tlsconfig.Server{}).Config(); cfg != nil || err != nil {
		t.Fatalf("Server{}.Config() = %v, %v; want nil, nil", cfg, err)
	}
	if cfg, err := (tlsconfig.Client{}).Config(); cfg != nil || err != nil {
		t.Fatalf("Client{}.Config() = %v, %v; want nil, nil", cfg, err)
	}
}

func TestConfigs(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	srv, cli := ca.Server("backend"), ca.Client("frontend")

	s, err := tlsconfig.Server{Cert: srv.CertFile, Key: srv.KeyFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if s.MinVersion != tls.VersionTLS12 || s.ClientAuth != tls.NoClientCert || len(s.Certificates) != 1 {
		t.Errorf("TLS server config %+v", s)
	}
	s, err = tlsconfig.Server{Cert: srv.CertFile, Key: srv.KeyFile, ClientCA: ca.CertFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if s.ClientAuth != tls.RequireAndVerifyClientCert || s.ClientCAs == nil {
		t.Errorf("a client CA must turn on mutual TLS: %+v", s)
	}

	c, err := tlsconfig.Client{CA: ca.CertFile, Cert: cli.CertFile, Key: cli.KeyFile, ServerName: "backend"}.Config()
	if err != nil {
		t.Fatal(err)
	}
	if c.MinVersion != tls.VersionTLS12 || c.RootCAs == nil || len(c.Certificates) != 1 || c.ServerName != "backend" {
		t.Errorf("client config %+v", c)
	}
	// A server name alone turns TLS on with the system's CAs.
	c, err = tlsconfig.Client{ServerName: "backend"}.Config()
	if err != nil || c == nil || c.RootCAs != nil {
		t.Errorf("Client{ServerName}.Config() = %+v, %v; want TLS with system CAs", c, err)
	}
}

func TestBadFilesSayWhatIsWrong(t *testing.T) {
	ca := tlstest.NewCA(t, "test")
	srv := ca.Server("backend")
	other := ca.Server("other")
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not PEM at all\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name string
		load func() (*tls.Config, error)
		want string
	}{
		{"cert without key", tlsconfig.Server{Cert: srv.CertFile}.Config, "needs both a certificate and its key"},
		{"client CA alone", tlsconfig.Server{ClientCA: ca.CertFile}.Config, "needs both a certificate and its key"},
		{"missing cert", tlsconfig.Server{Cert: missing, Key: srv.KeyFile}.Config, missing + ": no such file"},
		{"key of another cert", tlsconfig.Server{Cert: srv.CertFile, Key: other.KeyFile}.Config, "private key does not match public key"},
		{"garbage cert", tlsconfig.Server{Cert: garbage, Key: srv.KeyFile}.Config, garbage},
		{"garbage client CA", tlsconfig.Server{Cert: srv.CertFile, Key: srv.KeyFile, ClientCA: garbage}.Config, "CA file " + garbage + " holds no PEM certificate"},
		{"key as CA", tlsconfig.Client{CA: srv.KeyFile}.Config, "holds no PEM certificate"},
		{"missing CA", tlsconfig.Client{CA: missing}.Config, missing},
		{"client cert without key", tlsconfig.Client{Cert: srv.CertFile}.Config, "needs both the certificate and its key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := tt.load()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Config() = %v, %v; want an error saying %q", cfg, err, tt.want)
			}
		})
	}
}

func TestTrustServer(t *testing.T) {
	srv := tlstest.NewCA(t, "test").Server("backend", "backend.example")
	s, err := tlsconfig.Server{Cert: srv.CertFile, Key: srv.KeyFile}.Config()
	if err != nil {
		t.Fatal(err)
	}
	c := &tls.Config{}
	if err := tlsconfig.TrustServer(c, s); err != nil {
		t.Fatal(err)
	}
	if c.ServerName != "localhost" || c.RootCAs == nil {
		t.Fatalf("TrustServer gave %+v; want RootCAs and the certificate's first name", c)
	}
	c = &tls.Config{ServerName: "backend.example"}
	if err := tlsconfig.TrustServer(c, s); err != nil || c.ServerName != "backend.example" {
		t.Fatalf("TrustServer replaced the name the client chose: %q, %v", c.ServerName, err)
	}
}
