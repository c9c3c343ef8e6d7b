package cli

import (
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"time"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/frontend"
	"github.com/grpcplay/grpcplay/internal/clientlimit"
	"github.com/grpcplay/grpcplay/internal/telemetry"
	"github.com/grpcplay/grpcplay/internal/tlsconfig"
)

// The flag groups the commands are built from. Each group defines its flags
// and checks its own settings; a command lists the groups it has.

// exposure is what a command opens to whom. `serve` is the newcomer's
// command, run on a laptop: its four ports answer this machine only, since
// /debug shows internal addresses and /compare starts seconds of load on
// demand. `backend` and `frontend` run in containers, where only the
// orchestrator's port mapping decides who reaches them, and must listen on
// every interface of the container for that mapping to work.
type exposure struct {
	// listenHost is the host of every default listen address.
	listenHost string
	// pages turns /debug and /compare on by default.
	pages bool
}

var (
	localOnly = exposure{listenHost: "localhost", pages: true}
	container = exposure{}
)

// listenDefault is the default listen address of a port.
func (e exposure) listenDefault(port string) string {
	return net.JoinHostPort(e.listenHost, port)
}

// serverFlags are the settings of every command that runs servers until it
// is stopped: its grace period and its logs.
type serverFlags struct {
	// service names the process in traces.
	service   string
	grace     time.Duration
	logLevel  slog.Level
	logFormat string
	// trustedProxies applies to the page and REST ports, the ones a proxy
	// may front.
	trustedProxies clientlimit.Proxies
}

func (s *serverFlags) settings() *serverFlags { return s }

func (s *serverFlags) define(fs *flag.FlagSet) {
	fs.DurationVar(&s.grace, "grace", 20*time.Second, "on SIGTERM, how long calls in flight may take to finish")
	fs.Var(levelFlag{&s.logLevel}, "log-level", "debug, info, warn or error; info logs every call and page request")
	fs.StringVar(&s.logFormat, "log-format", "text", "log format: text, or json for a log pipeline")
	fs.Var(&s.trustedProxies, "trusted-proxies", "comma-separated CIDRs of proxies whose X-Forwarded-For names the client for the fair shares of the page and REST ports; empty trusts none")
}

func (s *serverFlags) checkGrace() []error {
	if s.grace < 0 {
		return []error{fmt.Errorf("--grace must not be negative, got %v", s.grace)}
	}
	return nil
}

// checkObservability checks the log format and the standard OTEL_*
// variables of tracing.
func (s *serverFlags) checkObservability(getenv func(string) string) []error {
	var errs []error
	if s.logFormat != "" && !slices.Contains(telemetry.LogFormats, s.logFormat) {
		errs = append(errs, fmt.Errorf("--log-format must be text or json, got %q", s.logFormat))
	}
	if telemetry.TracingEnabled(getenv) {
		if _, err := telemetry.TracingProtocol(getenv); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// defaultMetricsPort is the backend's metrics port: 9464 is the port
// OpenTelemetry's Prometheus exporters use.
const defaultMetricsPort = "9464"

// backendFlags are the gRPC backend's settings, with its REST face, its
// metrics port and its TLS.
type backendFlags struct {
	grpcAddr    string
	restAddr    string
	metricsAddr string
	cfg         backend.Config
	tls         tlsconfig.Server
	// restMaxConns caps the REST port's connections (gateway.Config).
	restMaxConns int
}

func (b *backendFlags) define(fs *flag.FlagSet, getenv func(string) string, e exposure) {
	_, port := backendHostPort(getenv)
	d := backend.DefaultConfig
	b.cfg = d
	fs.StringVar(&b.grpcAddr, "grpc-addr", e.listenDefault(port), "address the gRPC backend listens on (its port defaults to BACKEND_PORT)")
	fs.Var(int32Flag{&b.cfg.Limits.MaxItems}, "max-items", "largest getAll length")
	fs.Var(int32Flag{&b.cfg.Limits.MaxStreamItems}, "max-stream-items", "largest getStream length")
	fs.IntVar(&b.cfg.Limits.MaxNameBytes, "max-name-bytes", d.Limits.MaxNameBytes, "longest sayHello name, in bytes")
	// 0 takes the default, which depends on the machine's descriptor
	// limit: a fixed default would print differently on every machine.
	fs.IntVar(&b.cfg.MaxConns, "grpc-max-conns", 0, "connections the gRPC port holds open; at the cap a new one evicts an idle one (0: an eighth of the descriptor limit, at most 64)")
	fs.DurationVar(&b.cfg.MaxConnectionAge, "max-connection-age", d.MaxConnectionAge, "close client connections after this long, so clients find new replicas")
	fs.StringVar(&b.metricsAddr, "metrics-addr", e.listenDefault(defaultMetricsPort), "address of the backend's Prometheus /metrics; empty turns metrics off")
	fs.StringVar(&b.restAddr, "rest-addr", e.listenDefault("8080"), "address the REST/JSON gateway listens on; empty turns it off")
	fs.IntVar(&b.restMaxConns, "rest-max-conns", 0, "connections the REST port holds open; at the cap a new one evicts an idle one (0: an eighth of the descriptor limit, at most 4096)")
	// Plaintext stays the default, as in the post: TLS is on only when a
	// file is named.
	fs.StringVar(&b.tls.Cert, "tls-cert", "", "PEM certificate (chain) the backend presents; with --tls-key it serves TLS instead of plaintext")
	fs.StringVar(&b.tls.Key, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&b.tls.ClientCA, "tls-client-ca", "", "PEM CA certificate(s); the backend then requires a client certificate they signed (mutual TLS)")
}

func (b *backendFlags) check() []error {
	var errs []error
	if err := b.cfg.Limits.Validate(); err != nil {
		errs = append(errs, err)
	}
	if b.cfg.MaxConns < 0 || b.restMaxConns < 0 {
		errs = append(errs, errors.New("--grpc-max-conns and --rest-max-conns must not be negative"))
	}
	return append(errs, positive("max-connection-age", b.cfg.MaxConnectionAge)...)
}

// loadTLS reads the certificate files named by the flags, so that a missing
// or broken file is a usage error at startup rather than a failure of the
// first call.
func (b *backendFlags) loadTLS() error {
	c, err := b.tls.Config()
	if err != nil {
		return fmt.Errorf("--tls-cert, --tls-key, --tls-client-ca: %w", err)
	}
	b.cfg.TLS = c
	return nil
}

func (b *backendFlags) addrs() []listenAddr {
	return []listenAddr{
		{"grpc-addr", b.grpcAddr, false},
		{"rest-addr", b.restAddr, true},
		{"metrics-addr", b.metricsAddr, true},
	}
}

// security names what the backend serves, for its startup log line.
func (b *backendFlags) security() string {
	switch {
	case b.cfg.TLS == nil:
		return "plaintext"
	case b.cfg.TLS.ClientAuth == tls.RequireAndVerifyClientCert:
		return "mTLS"
	}
	return "TLS"
}

// frontendFlags are the web frontend's settings.
type frontendFlags struct {
	httpAddr    string
	cfg         frontend.Config
	comparePage bool
}

func (f *frontendFlags) define(fs *flag.FlagSet, e exposure) {
	d := frontend.DefaultConfig
	f.cfg = d
	fs.StringVar(&f.httpAddr, "http-addr", e.listenDefault("5000"), "address the web frontend listens on")
	fs.DurationVar(&f.cfg.Timeout, "page-timeout", d.Timeout, "deadline of one page's backend calls")
	fs.DurationVar(&f.cfg.LiveTimeout, "live-timeout", d.LiveTimeout, "deadline of one live stream")
	fs.Var(int32Flag{&f.cfg.MaxPageItems}, "max-page-items", "largest length the page accepts")
	fs.Var(int32Flag{&f.cfg.MaxLiveItems}, "max-live-items", "largest length the live view accepts")
	fs.IntVar(&f.cfg.MaxLiveStreams, "max-live-streams", d.MaxLiveStreams, "live streams open at once, shared fairly by client address; a client holding its share gets 429")
	fs.IntVar(&f.cfg.MaxConns, "http-max-conns", 0, "connections the page's port holds open; at the cap a new one evicts an idle one (0: an eighth of the descriptor limit, at most 1024)")
	fs.BoolVar(&f.cfg.DebugPage, "debug-page", e.pages, "serve /debug: the backend connection, its addresses and call counts")
	fs.BoolVar(&f.comparePage, "compare-page", e.pages,
		"let /compare run its bench: any visitor may then start about 40 seconds of gRPC-against-REST load on this machine (at most once per interval); off, the page says it is not available")
}

// check refuses settings that would make every page fail, or that a zero
// would silently turn into a default.
func (f *frontendFlags) check() []error {
	errs := append(positive("page-timeout", f.cfg.Timeout), positive("live-timeout", f.cfg.LiveTimeout)...)
	if f.cfg.MaxConns < 0 {
		errs = append(errs, errors.New("--http-max-conns must not be negative"))
	}
	if f.cfg.MaxPageItems < 1 || f.cfg.MaxLiveItems < 1 || f.cfg.MaxLiveStreams < 1 {
		errs = append(errs, fmt.Errorf("--max-page-items, --max-live-items and --max-live-streams must be at least 1"))
	}
	return errs
}

func (f *frontendFlags) addrs() []listenAddr {
	return []listenAddr{{"http-addr", f.httpAddr, false}}
}

// clientFlags are how a command reaches a gRPC server: over plaintext, as in
// the post, or TLS when any of the --backend-* files is named.
type clientFlags struct {
	tls    tlsconfig.Client
	config *tls.Config
}

// define adds the flags; what names the server they verify in the help.
func (c *clientFlags) define(fs *flag.FlagSet, what string) {
	fs.StringVar(&c.tls.CA, "backend-ca", "", "PEM CA certificate(s) that verify "+what+"; any --backend-ca, --backend-cert, --backend-key or --backend-server-name turns on TLS (system CAs when only the others are set)")
	fs.StringVar(&c.tls.Cert, "backend-cert", "", "PEM client certificate presented to "+what+", for mutual TLS")
	fs.StringVar(&c.tls.Key, "backend-key", "", "PEM private key of --backend-cert")
	fs.StringVar(&c.tls.ServerName, "backend-server-name", "", "name to verify in the certificate of "+what+" (default: the host of the target)")
}

// load reads the certificate files named by the flags.
func (c *clientFlags) load() error {
	cfg, err := c.tls.Config()
	if err != nil {
		return fmt.Errorf("--backend-ca, --backend-cert, --backend-key: %w", err)
	}
	c.config = cfg
	return nil
}

// options are the client settings every command that calls the backend
// shares.
func (c *clientFlags) options() []client.Option {
	if c.config == nil {
		return nil
	}
	return []client.Option{client.WithTLS(c.config)}
}

// loadBoth loads the TLS files of a server and of a client; both errors are
// reported.
func loadBoth(b *backendFlags, c *clientFlags) []error {
	var errs []error
	for _, err := range []error{b.loadTLS(), c.load()} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// targetFlag adds --backend, the gRPC target of the backend.
func targetFlag(fs *flag.FlagSet, target *string, getenv func(string) string) {
	fs.StringVar(target, "backend", defaultTarget(getenv), "gRPC target of the backend (env BACKEND_HOST and BACKEND_PORT, as host:port)")
}

// checkAddrs checks every listen address of a command.
func checkAddrs(addrs ...[]listenAddr) []error {
	var errs []error
	for _, a := range slices.Concat(addrs...) {
		if err := a.check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

var errNoTLS = errors.New("the --backend-* TLS flags of serve need its backend to serve TLS: add --tls-cert and --tls-key")
