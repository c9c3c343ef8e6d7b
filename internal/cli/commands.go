package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"slices"
	"time"

	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/tlsconfig"
	"github.com/grpcplay/grpcplay/internal/version"
)

// serveCmd is `grpcplay serve`: backend and frontend in one process, on this
// machine only. The frontend reaches the backend over a real loopback
// connection, as it would across machines.
type serveCmd struct {
	server   serverFlags
	backend  backendFlags
	frontend frontendFlags
	client   clientFlags
	// target is the backend's address once it listens.
	target string
}

func newServe() *serveCmd { return &serveCmd{server: serverFlags{service: "grpcplay"}} }

func (c *serveCmd) settings() *serverFlags { return &c.server }

func (c *serveCmd) define(fs *flag.FlagSet, getenv func(string) string) {
	c.server.define(fs)
	c.backend.define(fs, getenv, localOnly)
	c.frontend.define(fs, localOnly)
	c.client.define(fs, "the backend")
}

func (c *serveCmd) validate(getenv func(string) string) []error {
	tlsErrs := loadBoth(&c.backend, &c.client)
	if len(tlsErrs) == 0 {
		if err := c.trustOwnBackend(); err != nil {
			tlsErrs = []error{err}
		}
	}
	return slices.Concat(c.server.checkGrace(), c.backend.check(), c.frontend.check(), tlsErrs,
		checkAddrs(c.backend.addrs(), c.frontend.addrs()), c.server.checkObservability(getenv))
}

// trustOwnBackend sets up how serve's frontend reaches its own backend over
// loopback. With TLS on the backend and no --backend-ca, the frontend
// trusts exactly the certificate the backend presents, under a name that
// certificate holds, so that --tls-cert and --tls-key are all a user types.
// Mutual TLS still needs --backend-cert and --backend-key: the frontend's
// own certificate must come from the CA the backend trusts.
func (c *serveCmd) trustOwnBackend() error {
	if c.backend.cfg.TLS == nil {
		if c.client.config != nil {
			return errNoTLS
		}
		return nil
	}
	if c.backend.tls.ClientCA != "" && c.client.tls.Cert == "" {
		return errors.New("serve with --tls-client-ca needs --backend-cert and --backend-key: a client certificate signed by that CA, for its own frontend")
	}
	if c.client.config == nil {
		c.client.config = &tls.Config{MinVersion: tlsconfig.MinVersion}
	}
	if c.client.tls.CA != "" {
		return nil
	}
	return tlsconfig.TrustServer(c.client.config, c.backend.cfg.TLS)
}

func (c *serveCmd) run(ctx context.Context, m *Main) error {
	if err := m.servers.startBackend(&c.backend); err != nil {
		return err
	}
	c.target = dialable(m.servers.grpcLis.Addr(), "127.0.0.1")
	if err := m.servers.startFrontend(&c.frontend, c.target, c.client.options()); err != nil {
		return err
	}
	fmt.Fprint(m.Stdout, c.banner(m, version.String()))
	return nil
}

// banner is serve's one line on stdout: every address it opened, so a
// newcomer sees where each face is without reading the logs.
func (c *serveCmd) banner(m *Main, version string) string {
	rest, metrics := "off", "off"
	if u := m.RESTURL(); u != "" {
		rest = u
	}
	if u := m.MetricsURL(); u != "" {
		metrics = u
	}
	return fmt.Sprintf("grpcplay %s: open %s (gRPC backend on %s, %s; REST/JSON on %s; metrics on %s)\n",
		version, m.HTTPURL(), c.target, c.backend.security(), rest, metrics)
}

// backendCmd is `grpcplay backend`: the gRPC backend with its REST face and
// metrics port, for a container.
type backendCmd struct {
	server  serverFlags
	backend backendFlags
}

func newBackendCmd() *backendCmd {
	return &backendCmd{server: serverFlags{service: "grpcplay-backend"}}
}

func (c *backendCmd) settings() *serverFlags { return &c.server }

func (c *backendCmd) define(fs *flag.FlagSet, getenv func(string) string) {
	c.server.define(fs)
	c.backend.define(fs, getenv, container)
}

func (c *backendCmd) validate(getenv func(string) string) []error {
	var tlsErrs []error
	if err := c.backend.loadTLS(); err != nil {
		tlsErrs = []error{err}
	}
	return slices.Concat(c.server.checkGrace(), c.backend.check(), tlsErrs,
		checkAddrs(c.backend.addrs()), c.server.checkObservability(getenv))
}

func (c *backendCmd) run(ctx context.Context, m *Main) error {
	if err := m.servers.startBackend(&c.backend); err != nil {
		return err
	}
	m.log.Info("backend listening", "addr", m.GRPCAddr(), "security", c.backend.security(), "version", version.String())
	return nil
}

// frontendCmd is `grpcplay frontend`: the web frontend calling a backend,
// for a container.
type frontendCmd struct {
	server   serverFlags
	frontend frontendFlags
	client   clientFlags
	target   string
	// refresh is how often the backend's name is looked up again; 0 leaves
	// it to gRPC, which looks up only when a connection closes.
	refresh time.Duration
}

func newFrontendCmd() *frontendCmd {
	return &frontendCmd{server: serverFlags{service: "grpcplay-frontend"}}
}

func (c *frontendCmd) settings() *serverFlags { return &c.server }

func (c *frontendCmd) define(fs *flag.FlagSet, getenv func(string) string) {
	c.server.define(fs)
	c.frontend.define(fs, container)
	targetFlag(fs, &c.target, getenv)
	fs.DurationVar(&c.refresh, "backend-refresh", 0,
		"look the backend's DNS name up again this often, so calls reach new replicas within seconds (about 2s for cluster DNS); 0 waits until a connection closes (--max-connection-age)")
	c.client.define(fs, "the backend")
}

func (c *frontendCmd) validate(getenv func(string) string) []error {
	var errs []error
	if err := c.client.load(); err != nil {
		errs = append(errs, err)
	}
	if c.refresh < 0 {
		errs = append(errs, fmt.Errorf("--backend-refresh must not be negative, got %v", c.refresh))
	}
	return slices.Concat(c.server.checkGrace(), c.frontend.check(), errs,
		checkAddrs(c.frontend.addrs()), c.server.checkObservability(getenv))
}

func (c *frontendCmd) run(ctx context.Context, m *Main) error {
	opts := c.client.options()
	if c.refresh > 0 {
		opts = append(opts, client.WithDNSRefresh(c.refresh))
	}
	if err := m.servers.startFrontend(&c.frontend, c.target, opts); err != nil {
		return err
	}
	m.log.Info("frontend listening", "url", m.HTTPURL(), "backend", c.target, "version", version.String())
	c.checkBackend(ctx, m)
	return nil
}

// backendCheckTimeout bounds the check of the backend at start: the page
// already serves meanwhile.
const backendCheckTimeout = 5 * time.Second

// checkBackend warns when the backend cannot be reached at start, which the
// page otherwise tells only with 503s. The frontend runs on: a backend
// that starts later (as under Compose) is found by the client's reconnects.
func (c *frontendCmd) checkBackend(ctx context.Context, m *Main) {
	ctx, cancel := context.WithTimeout(ctx, backendCheckTimeout)
	defer cancel()
	err := m.servers.client.Ready(ctx)
	if err == nil {
		return
	}
	attrs := []any{"backend", c.target, "err", callError(err)}
	if hint := backendHint(c.target, err); hint != "" {
		attrs = append(attrs, "hint", hint)
	}
	m.log.Warn("backend unreachable: the page answers 503 until it is", attrs...)
}

// healthcheckCmd is `grpcplay healthcheck`, a container image's check of
// itself (healthcheck.go).
type healthcheckCmd struct {
	grpc, http string
	timeout    time.Duration
	client     clientFlags
}

func (*healthcheckCmd) ignoresEnv() {}

func (c *healthcheckCmd) define(fs *flag.FlagSet, _ func(string) string) {
	fs.StringVar(&c.grpc, "grpc", "", "gRPC address whose health service must report SERVING (default localhost:50051 when neither flag is set)")
	fs.StringVar(&c.http, "http", "", "URL that must answer 200 (default http://localhost:5000/readyz when neither flag is set)")
	fs.DurationVar(&c.timeout, "timeout", 3*time.Second, "deadline of each check")
	c.client.define(fs, "the --grpc server")
}

func (c *healthcheckCmd) validate(func(string) string) []error {
	errs := positive("timeout", c.timeout)
	if err := c.client.load(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

// versionCmd is `grpcplay version`.
type versionCmd struct{}

func (versionCmd) define(*flag.FlagSet, func(string) string) {}
func (versionCmd) validate(func(string) string) []error      { return nil }

func (versionCmd) run(_ context.Context, m *Main) error {
	_, err := fmt.Fprintln(m.Stdout, version.String())
	return err
}
