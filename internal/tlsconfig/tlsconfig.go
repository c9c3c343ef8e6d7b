// Package tlsconfig turns certificate and key files into the tls.Config of a
// gRPC server or client. Plaintext stays the default: it is used only when
// files are named. Every problem with a file is reported at startup, naming
// the file, so that a typo fails the command instead of the first call.
package tlsconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
)

// MinVersion is the oldest protocol either side accepts. TLS 1.0 and 1.1
// are deprecated (RFC 8996); Go picks 1.3 whenever both ends have it.
const MinVersion = tls.VersionTLS12

// Server names the files of a TLS server. With ClientCA set it requires and
// verifies a client certificate signed by that CA (mutual TLS).
type Server struct {
	Cert     string // PEM certificate chain, leaf first
	Key      string // PEM private key of the leaf
	ClientCA string // PEM CA certificates that sign client certificates
}

// Enabled reports whether any file is named, that is, whether the server
// should speak TLS at all.
func (s Server) Enabled() bool { return s.Cert != "" || s.Key != "" || s.ClientCA != "" }

// Config loads the files. It returns nil, nil when none is named.
func (s Server) Config() (*tls.Config, error) {
	if !s.Enabled() {
		return nil, nil
	}
	if s.Cert == "" || s.Key == "" {
		return nil, errors.New("a TLS server needs both a certificate and its key")
	}
	cert, err := loadKeyPair(s.Cert, s.Key)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: MinVersion, Certificates: []tls.Certificate{cert}}
	if s.ClientCA != "" {
		pool, err := loadPool(s.ClientCA)
		if err != nil {
			return nil, err
		}
		cfg.ClientCAs = pool
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
	}
	return cfg, nil
}

// Client names the files of a TLS client.
type Client struct {
	CA         string // PEM CA certificates that verify the server; empty: the system's
	Cert       string // PEM client certificate chain, for servers that require one
	Key        string // PEM private key of Cert
	ServerName string // name to verify in the server's certificate; empty: the target's host
}

// Enabled reports whether any setting is given, that is, whether the
// client should speak TLS at all.
func (c Client) Enabled() bool {
	return c.CA != "" || c.Cert != "" || c.Key != "" || c.ServerName != ""
}

// Config loads the files. It returns nil, nil when nothing is set.
func (c Client) Config() (*tls.Config, error) {
	if !c.Enabled() {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: MinVersion, ServerName: c.ServerName}
	if c.CA != "" {
		pool, err := loadPool(c.CA)
		if err != nil {
			return nil, err
		}
		cfg.RootCAs = pool
	}
	if (c.Cert == "") != (c.Key == "") {
		return nil, errors.New("a client certificate needs both the certificate and its key")
	}
	if c.Cert != "" {
		cert, err := loadKeyPair(c.Cert, c.Key)
		if err != nil {
			return nil, err
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

func loadKeyPair(certFile, keyFile string) (tls.Certificate, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return tls.Certificate{}, err
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("certificate %s with key %s: %w", certFile, keyFile, err)
	}
	return cert, nil
}

// loadPool refuses a file without a single certificate, which
// x509.CertPool.AppendCertsFromPEM would silently accept as an empty pool
// that trusts nothing.
func loadPool(file string) (*x509.CertPool, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("CA file %s: %w", file, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("CA file %s holds no PEM certificate", file)
	}
	return pool, nil
}

// TrustServer makes client trust exactly the certificate that server
// presents, and verify it under a name that certificate holds (its first DNS
// name, else its first IP address) unless client names one already. It lets
// a process reach its own TLS server over loopback with no CA file.
func TrustServer(client, server *tls.Config) error {
	if len(server.Certificates) == 0 || server.Certificates[0].Leaf == nil {
		return errors.New("the server has no parsed certificate to trust")
	}
	leaf := server.Certificates[0].Leaf
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	client.RootCAs = pool
	if client.ServerName != "" {
		return nil
	}
	switch {
	case len(leaf.DNSNames) > 0:
		client.ServerName = leaf.DNSNames[0]
	case len(leaf.IPAddresses) > 0:
		client.ServerName = leaf.IPAddresses[0].String()
	default:
		return errors.New("the server's certificate names no DNS name or IP address")
	}
	return nil
}
