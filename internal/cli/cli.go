// Package cli is the grpcplay command: it parses a subcommand and its flags,
// starts the servers it names and stops them gracefully. Main is driven by
// cmd/grpcplay and, in-process on port 0, by the end-to-end tests.
package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/bench"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/frontend"
	"github.com/grpcplay/grpcplay/gateway"
	"github.com/grpcplay/grpcplay/internal/telemetry"
	"github.com/grpcplay/grpcplay/internal/tlsconfig"
	"github.com/grpcplay/grpcplay/internal/version"
)

const usage = `grpcplay: a gRPC backend, a web frontend and a client, from "Playing with gRPC and Python".

Usage:
  grpcplay serve        backend and frontend in one process (start here)
  grpcplay backend      the gRPC backend (api.Api, health, reflection)
  grpcplay frontend     the web frontend, calling a backend
  grpcplay call         call a backend: hello NAME | items N | stream N
  grpcplay bench        gRPC against REST/JSON under load: a table, JSON or an SVG chart
  grpcplay healthcheck  exit 0 when the local servers are healthy (for containers)
  grpcplay version      print the version

Run "grpcplay COMMAND --help" for a command's settings.
`

// errUsage marks errors that should exit with status 2.
var errUsage = errors.New("usage")

// errReported marks a usage error that the flag package already printed,
// with the command's usage, so Execute does not print it again.
var errReported = errors.New("reported")

// Main is one run of the grpcplay command.
type Main struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string

	command string
	run     func(context.Context) error

	grace    time.Duration
	logLevel slog.Level
	log      *slog.Logger

	grpcAddr    string
	httpAddr    string
	target      string
	backendCfg  backend.Config
	frontendCfg frontend.Config

	callTimeout time.Duration
	output      string
	callArgs    []string
	checkGRPC   string
	checkHTTP   string

	grpcLis     net.Listener
	httpLis     net.Listener
	backendSrv  *backend.Server
	frontendSrv *frontend.Server
	client      *client.Client
	serveErr    chan error
	servers     int

	// TLS and mTLS between frontend and backend (tls.go).
	serverTLS        tlsconfig.Server
	backendTLS       tlsconfig.Client
	backendClientTLS *tls.Config

	// Observability (issue 5), in observe.go.
	logFormat   string
	metricsAddr string
	metricsLis  net.Listener
	metricsSrv  *http.Server
	tracing     *telemetry.Tracing
	logOut      *telemetry.BufferedWriter

	// REST/JSON gateway: see rest.go.
	restAddr string
	restLis  net.Listener
	restSrv  *gateway.Server

	// bench: gRPC against REST/JSON (bench.go).
	benchCfg bench.Config
	benchFS  *flag.FlagSet
	benchSVG string

	// Review fixes (clifix): /compare on or off (exposure.go), and the
	// flush of the last spans, bounded apart from the grace (shutdown.go).
	comparePage       bool
	traceFlushTimeout time.Duration
}

// NewMain returns a Main wired to the process's stdio and environment.
func NewMain(stdout, stderr io.Writer, getenv func(string) string) *Main {
	return &Main{Stdout: stdout, Stderr: stderr, Getenv: getenv, serveErr: make(chan error, 4), traceFlushTimeout: defaultTraceFlushTimeout}
}

// Execute runs the whole command and returns the process exit status. It
// returns after a server command's ctx ends and its servers have stopped.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	m := NewMain(stdout, stderr, getenv)
	if err := m.ParseFlags(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if !errors.Is(err, errReported) {
			fmt.Fprintf(stderr, "grpcplay: %v\n", err)
		}
		return 2
	}
	if m.isServer() {
		defer routeLibraryLogs(m.log)()
	}
	err := m.Run(ctx)
	if err == nil {
		err = m.Wait(ctx)
	}
	if closeErr := m.Close(); err == nil {
		err = closeErr
	}
	if err != nil {
		fmt.Fprintf(stderr, "grpcplay %s: %v\n", m.command, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// ParseFlags reads the subcommand and its flags, with environment fallbacks.
func (m *Main) ParseFlags(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage)
		return fmt.Errorf("no command given")
	}
	m.command = args[0]
	fs := flag.NewFlagSet("grpcplay "+m.command, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var positional string
	switch m.command {
	case "serve":
		m.backendFlags(fs)
		m.frontendFlags(fs)
		m.restFlags(fs)
		m.serverFlags(fs)
		m.run = m.runServe
	case "backend":
		m.backendFlags(fs)
		m.restFlags(fs)
		m.serverFlags(fs)
		m.run = m.runBackend
	case "frontend":
		m.frontendFlags(fs)
		m.targetFlag(fs)
		m.serverFlags(fs)
		m.run = m.runFrontend
	case "call":
		m.targetFlag(fs)
		fs.DurationVar(&m.callTimeout, "timeout", 10*time.Second, "deadline of the call")
		fs.StringVar(&m.output, "o", "text", "output format: text or json")
		positional = " hello NAME | items N | stream N"
		m.run = m.runCall
	case "bench":
		m.benchFlags(fs)
	case "healthcheck":
		fs.StringVar(&m.checkGRPC, "grpc", "", "gRPC address whose health service must report SERVING (default localhost:50051 when neither flag is set)")
		fs.StringVar(&m.checkHTTP, "http", "", "URL that must answer 200 (default http://localhost:5000/readyz when neither flag is set)")
		fs.DurationVar(&m.callTimeout, "timeout", 3*time.Second, "deadline of each check")
		m.run = m.runHealthcheck
	case "version":
		m.run = m.runVersion
	case "help", "-h", "-help", "--help":
		fmt.Fprint(m.Stdout, usage)
		return flag.ErrHelp
	default:
		fmt.Fprint(m.Stderr, usage)
		return fmt.Errorf("unknown command %q", m.command)
	}
	m.tlsFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: grpcplay %s [flags]%s\n\nFlags:\n", m.command, positional)
		fs.PrintDefaults()
	}
	// A container's health check must not change with the variables set
	// for the server it checks.
	if m.command != "healthcheck" {
		if err := applyEnv(fs, m.Getenv); err != nil {
			return err
		}
	}
	// Flags may follow the arguments too, as in "call items 3 -o json", and a
	// negative length is an argument, not a flag, so that the backend can
	// explain why it is refused.
	rest := args[1:]
	for len(rest) > 0 {
		if _, err := strconv.Atoi(rest[0]); err == nil {
			m.callArgs = append(m.callArgs, rest[0])
			rest = rest[1:]
			continue
		}
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return err
			}
			return fmt.Errorf("%w: %w", errReported, err)
		}
		if fs.NArg() == 0 {
			break
		}
		m.callArgs = append(m.callArgs, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if positional == "" && len(m.callArgs) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", m.command, m.callArgs)
	}
	if err := m.validate(); err != nil {
		return err
	}
	log, err := telemetry.NewLogger(m.logWriter(), m.logFormat, m.logLevel)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	m.log = log
	m.backendCfg.Logger = m.log
	m.frontendCfg.Logger = m.log
	m.setUpObservability()
	return nil
}

func (m *Main) serverFlags(fs *flag.FlagSet) {
	fs.DurationVar(&m.grace, "grace", 20*time.Second, "on SIGTERM, how long calls in flight may take to finish")
	fs.Var(levelFlag{&m.logLevel}, "log-level", "debug, info, warn or error; info logs every call and page request")
	m.logFlags(fs)
}

func (m *Main) backendFlags(fs *flag.FlagSet) {
	_, port := backendHostPort(m.Getenv)
	d := backend.DefaultConfig
	m.backendCfg = d
	fs.StringVar(&m.grpcAddr, "grpc-addr", m.listenDefault(port), "address the gRPC backend listens on (its port defaults to BACKEND_PORT)")
	fs.Var(int32Flag{&m.backendCfg.Limits.MaxItems}, "max-items", "largest getAll length")
	fs.Var(int32Flag{&m.backendCfg.Limits.MaxStreamItems}, "max-stream-items", "largest getStream length")
	fs.IntVar(&m.backendCfg.Limits.MaxNameBytes, "max-name-bytes", d.Limits.MaxNameBytes, "longest sayHello name, in bytes")
	fs.DurationVar(&m.backendCfg.MaxConnectionAge, "max-connection-age", d.MaxConnectionAge, "close client connections after this long, so clients find new replicas")
	m.metricsFlags(fs)
}

func (m *Main) frontendFlags(fs *flag.FlagSet) {
	d := frontend.DefaultConfig
	m.frontendCfg = d
	fs.StringVar(&m.httpAddr, "http-addr", m.listenDefault("5000"), "address the web frontend listens on")
	fs.DurationVar(&m.frontendCfg.Timeout, "page-timeout", d.Timeout, "deadline of one page's backend calls")
	fs.DurationVar(&m.frontendCfg.LiveTimeout, "live-timeout", d.LiveTimeout, "deadline of one live stream")
	fs.Var(int32Flag{&m.frontendCfg.MaxPageItems}, "max-page-items", "largest length the page accepts")
	fs.Var(int32Flag{&m.frontendCfg.MaxLiveItems}, "max-live-items", "largest length the live view accepts")
	fs.IntVar(&m.frontendCfg.MaxLiveStreams, "max-live-streams", d.MaxLiveStreams, "live streams open at once; more get 503")
	m.debugFlags(fs)
	m.compareFlags(fs)
}

func (m *Main) targetFlag(fs *flag.FlagSet) {
	fs.StringVar(&m.target, "backend", defaultTarget(m.Getenv), "gRPC target of the backend (env BACKEND_HOST and BACKEND_PORT, as host:port)")
}

// Run starts a server command's servers and returns once they listen, or
// runs any other command to completion.
func (m *Main) Run(ctx context.Context) error {
	if err := m.startTracing(ctx); err != nil {
		return err
	}
	return m.run(ctx)
}

// Wait blocks until ctx ends or a server fails.
func (m *Main) Wait(ctx context.Context) error {
	if m.servers == 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		m.log.Info("shutting down", "grace", m.grace)
		return nil
	case err := <-m.serveErr:
		// That server has stopped: Close must not wait for it again.
		m.servers--
		if err == nil {
			err = errors.New("a server stopped unexpectedly")
		}
		return err
	}
}

// GRPCAddr is the address the backend listens on, once Run has returned.
func (m *Main) GRPCAddr() string { return m.grpcLis.Addr().String() }

// HTTPURL is the frontend's base URL, once Run has returned.
func (m *Main) HTTPURL() string { return "http://" + dialable(m.httpLis.Addr(), "localhost") }

func (m *Main) runServe(ctx context.Context) error {
	if err := m.startBackend(); err != nil {
		return err
	}
	// The frontend reaches the backend over a real loopback connection, as it
	// would across machines.
	m.target = dialable(m.grpcLis.Addr(), "127.0.0.1")
	if err := m.startFrontend(); err != nil {
		return err
	}
	fmt.Fprint(m.Stdout, m.serveBanner(version.String()))
	return nil
}

func (m *Main) runBackend(ctx context.Context) error {
	if err := m.startBackend(); err != nil {
		return err
	}
	m.log.Info("backend listening", "addr", m.GRPCAddr(), "security", m.backendSecurity(), "version", version.String())
	return nil
}

func (m *Main) runFrontend(ctx context.Context) error {
	if err := m.startFrontend(); err != nil {
		return err
	}
	m.log.Info("frontend listening", "url", m.HTTPURL(), "backend", m.target, "version", version.String())
	return nil
}

func (m *Main) startBackend() error {
	lis, err := listen("grpc-addr", m.grpcAddr)
	if err != nil {
		return err
	}
	m.grpcLis = lis
	m.backendSrv = backend.NewServer(m.backendCfg)
	m.servers++
	go func() { m.serveErr <- m.backendSrv.Serve(lis) }()
	if err := m.startMetrics(); err != nil {
		return err
	}
	return m.startREST()
}

func (m *Main) startFrontend() error {
	c, err := client.New(m.target, append(m.clientOptions(), client.WithDialOptions(
		telemetry.GRPCClientOptions(m.frontendCfg.Metrics, m.frontendCfg.TracerProvider)...))...)
	if err != nil {
		return fmt.Errorf("backend target %q: %w", m.target, err)
	}
	m.client = c
	lis, err := listen("http-addr", m.httpAddr)
	if err != nil {
		return err
	}
	m.httpLis = lis
	m.setUpCompare()
	m.frontendSrv = frontend.New(m.frontendCfg, c)
	m.servers++
	go func() { m.serveErr <- m.frontendSrv.Serve(lis) }()
	return nil
}

func (m *Main) runVersion(context.Context) error {
	_, err := fmt.Fprintln(m.Stdout, version.String())
	return err
}

// dialable turns a listening address into one a client on this machine can
// dial: a wildcard host becomes loopback.
func dialable(addr net.Addr, loopback string) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = loopback
	}
	return net.JoinHostPort(host, port)
}

func parseInt32(s string) (int32, error) {
	n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 32)
	if err != nil {
		var numErr *strconv.NumError
		if errors.As(err, &numErr) && errors.Is(numErr.Err, strconv.ErrRange) {
			return 0, fmt.Errorf("%q is out of range for a 32-bit length", s)
		}
		return 0, fmt.Errorf("%q is not a whole number", s)
	}
	return int32(n), nil
}

// validate refuses settings that would make every call fail, or that a zero
// would silently turn into a default.
func (m *Main) validate() error {
	var errs []error
	positive := func(name string, d time.Duration) {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("--%s must be more than 0, got %v", name, d))
		}
	}
	switch m.command {
	case "serve", "backend", "frontend":
		if m.grace < 0 {
			errs = append(errs, fmt.Errorf("--grace must not be negative, got %v", m.grace))
		}
	case "call", "healthcheck":
		positive("timeout", m.callTimeout)
	}
	if m.command == "serve" || m.command == "backend" {
		if err := m.backendCfg.Limits.Validate(); err != nil {
			errs = append(errs, err)
		}
		positive("max-connection-age", m.backendCfg.MaxConnectionAge)
	}
	if m.command == "serve" || m.command == "frontend" {
		f := m.frontendCfg
		positive("page-timeout", f.Timeout)
		positive("live-timeout", f.LiveTimeout)
		if f.MaxPageItems < 1 || f.MaxLiveItems < 1 || f.MaxLiveStreams < 1 {
			errs = append(errs, fmt.Errorf("--max-page-items, --max-live-items and --max-live-streams must be at least 1"))
		}
	}
	if err := m.loadTLS(); err != nil {
		errs = append(errs, err)
	}
	errs = append(errs, m.validateListenAddrs()...)
	errs = append(errs, m.validateObservability()...)
	if m.command == "bench" {
		errs = append(errs, m.validateBench()...)
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return nil
}
