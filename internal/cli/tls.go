package cli

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/tlsconfig"
)

// tlsFlags adds the TLS settings of the command's gRPC server and client.
// Plaintext stays the default, as in the post: TLS is on only when a file
// is named.
func (m *Main) tlsFlags(fs *flag.FlagSet) {
	switch m.command {
	case "serve", "backend":
		fs.StringVar(&m.serverTLS.Cert, "tls-cert", "", "PEM certificate (chain) the backend presents; with --tls-key it serves TLS instead of plaintext")
		fs.StringVar(&m.serverTLS.Key, "tls-key", "", "PEM private key of --tls-cert")
		fs.StringVar(&m.serverTLS.ClientCA, "tls-client-ca", "", "PEM CA certificate(s); the backend then requires a client certificate they signed (mutual TLS)")
	}
	switch m.command {
	case "serve", "frontend", "call", "healthcheck":
		what := "the backend"
		if m.command == "healthcheck" {
			what = "the --grpc server"
		}
		fs.StringVar(&m.backendTLS.CA, "backend-ca", "", "PEM CA certificate(s) that verify "+what+"; any --backend-ca, --backend-cert, --backend-key or --backend-server-name turns on TLS (system CAs when only the others are set)")
		fs.StringVar(&m.backendTLS.Cert, "backend-cert", "", "PEM client certificate presented to "+what+", for mutual TLS")
		fs.StringVar(&m.backendTLS.Key, "backend-key", "", "PEM private key of --backend-cert")
		fs.StringVar(&m.backendTLS.ServerName, "backend-server-name", "", "name to verify in the certificate of "+what+" (default: the host of the target)")
	}
}

// loadTLS reads the certificate files named by the flags, so that a missing
// or broken file is a usage error at startup rather than a failure of the
// first call.
func (m *Main) loadTLS() error {
	var errs []error
	serverTLS, err := m.serverTLS.Config()
	if err != nil {
		errs = append(errs, fmt.Errorf("--tls-cert, --tls-key, --tls-client-ca: %w", err))
	}
	m.backendCfg.TLS = serverTLS
	clientTLS, err := m.backendTLS.Config()
	if err != nil {
		errs = append(errs, fmt.Errorf("--backend-ca, --backend-cert, --backend-key: %w", err))
	}
	m.backendClientTLS = clientTLS
	if m.command == "serve" && len(errs) == 0 {
		errs = append(errs, m.serveTLS())
	}
	return errors.Join(errs...)
}

// serveTLS sets up how serve's frontend reaches its own backend over
// loopback. With TLS on the backend and no --backend-ca, the frontend
// trusts exactly the certificate the backend presents, under a name that
// certificate holds, so that --tls-cert and --tls-key are all a user types.
// Mutual TLS still needs --backend-cert and --backend-key: the frontend's
// own certificate must come from the CA the backend trusts.
func (m *Main) serveTLS() error {
	if m.backendCfg.TLS == nil {
		if m.backendClientTLS != nil {
			return errors.New("the --backend-* TLS flags of serve need its backend to serve TLS: add --tls-cert and --tls-key")
		}
		return nil
	}
	if m.serverTLS.ClientCA != "" && m.backendTLS.Cert == "" {
		return errors.New("serve with --tls-client-ca needs --backend-cert and --backend-key: a client certificate signed by that CA, for its own frontend")
	}
	if m.backendClientTLS == nil {
		m.backendClientTLS = &tls.Config{MinVersion: tlsconfig.MinVersion}
	}
	if m.backendTLS.CA != "" {
		return nil
	}
	return tlsconfig.TrustServer(m.backendClientTLS, m.backendCfg.TLS)
}

// clientOptions are the client settings every command that calls the
// backend shares.
func (m *Main) clientOptions() []client.Option {
	if m.backendClientTLS == nil {
		return nil
	}
	return []client.Option{client.WithTLS(m.backendClientTLS)}
}

// backendSecurity names what the backend serves, for its startup log line.
func (m *Main) backendSecurity() string {
	switch {
	case m.backendCfg.TLS == nil:
		return "plaintext"
	case m.backendCfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert:
		return "mTLS"
	}
	return "TLS"
}

// tlsHint suggests the flag that is likely missing when a call fails in
// the handshake: a mismatch of plaintext and TLS, or of TLS and mutual
// TLS, otherwise shows only as a closed connection.
func (m *Main) tlsHint(err error) string {
	if status.Code(err) != codes.Unavailable {
		return ""
	}
	msg := err.Error()
	closed := strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "EOF")
	switch {
	case m.backendClientTLS == nil && strings.Contains(msg, "error reading server preface"):
		return "the backend may serve TLS: set --backend-ca"
	case m.backendClientTLS != nil && len(m.backendClientTLS.Certificates) == 0 &&
		(strings.Contains(msg, "certificate required") || closed):
		return "the backend may require a client certificate (mutual TLS): set --backend-cert and --backend-key"
	}
	return ""
}

// callError is callError with a TLS hint when one applies.
func (m *Main) callError(err error) error {
	if hint := m.tlsHint(err); hint != "" {
		return fmt.Errorf("%w (%s)", callError(err), hint)
	}
	return callError(err)
}
