// Package cli is the grpcplay command: it parses a subcommand and its flags,
// starts the servers it names and stops them gracefully. Main is driven by
// cmd/grpcplay and, in-process on port 0, by the end-to-end tests.
//
// Each subcommand is a type (commands.go) built from shared flag groups
// (groups.go); the servers a command starts, and the order in which they
// stop, belong to one type (servers.go).
package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/grpcplay/grpcplay/internal/telemetry"
)

// usage is what grpcplay alone, or grpcplay help, prints.
func usage() string {
	var b strings.Builder
	b.WriteString("grpcplay: a gRPC backend, a web frontend and a client, from \"Playing with gRPC and Python\".\n\nUsage:\n")
	for _, c := range commands {
		fmt.Fprintf(&b, "  grpcplay %-12s %s\n", c.name, c.purpose)
	}
	b.WriteString("\nRun \"grpcplay COMMAND --help\" for a command's settings.\n")
	return b.String()
}

// errUsage marks errors that should exit with status 2.
var errUsage = errors.New("usage")

// command is one grpcplay subcommand.
type command interface {
	// define adds the command's flags, with defaults that may come from the
	// environment of the process (BACKEND_PORT).
	define(fs *flag.FlagSet, getenv func(string) string)
	// validate checks the parsed settings; each error is a usage error.
	validate(getenv func(string) string) []error
	// run starts a server command's servers and returns once they listen,
	// or runs any other command to completion.
	run(ctx context.Context, m *Main) error
}

// takesArgs is a command with positional arguments after its name.
type takesArgs interface {
	argsUsage() string
	setArgs(args []string)
}

// ownEnvironment is a command that ignores the GRPCPLAY_* variables: a
// container's health check must not change with the variables set for the
// server it checks.
type ownEnvironment interface{ ignoresEnv() }

// commands is the dispatch, the only place a command's name is looked at,
// in the order the usage lists them; purpose is the line that heads the
// command's --help and its line in the usage.
var commands = []struct {
	name, purpose string
	new           func() command
}{
	{"serve", "backend and frontend in one process (start here)", func() command { return newServe() }},
	{"backend", "the gRPC backend (api.Api, health, reflection)", func() command { return newBackendCmd() }},
	{"frontend", "the web frontend, calling a backend", func() command { return newFrontendCmd() }},
	{"call", "call a backend: hello NAME | items N | stream N", func() command { return &callCmd{} }},
	{"bench", "gRPC against REST/JSON under load: a table, JSON or an SVG chart", func() command { return &benchCmd{} }},
	{"healthcheck", "exit 0 when the local servers are healthy (for containers)", func() command { return &healthcheckCmd{} }},
	{"version", "print the version", func() command { return versionCmd{} }},
}

// Main is one run of the grpcplay command.
type Main struct {
	Stdout io.Writer
	Stderr io.Writer
	Getenv func(string) string

	name    string
	purpose string
	cmd     command
	log     *slog.Logger

	// servers are what a server command started, stopped by Close.
	servers *servers
}

// NewMain returns a Main wired to the process's stdio and environment.
func NewMain(stdout, stderr io.Writer, getenv func(string) string) *Main {
	return &Main{Stdout: stdout, Stderr: stderr, Getenv: getenv, servers: newServers()}
}

// Execute runs the whole command and returns the process exit status. It
// returns after a server command's ctx ends and its servers have stopped.
func Execute(ctx context.Context, args []string, stdout, stderr io.Writer, getenv func(string) string) int {
	m := NewMain(stdout, stderr, getenv)
	if err := m.ParseFlags(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		if m.cmd != nil {
			fmt.Fprintf(stderr, "grpcplay %s: %v\n", m.name, err)
		} else {
			fmt.Fprintf(stderr, "grpcplay: %v\n", err)
		}
		return 2
	}
	if m.server() != nil {
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
		fmt.Fprintf(stderr, "grpcplay %s: %v\n", m.name, err)
		if errors.Is(err, errUsage) {
			return 2
		}
		return 1
	}
	return 0
}

// ParseFlags reads the subcommand and its flags, with environment fallbacks.
func (m *Main) ParseFlags(args []string) error {
	if err := m.lookUp(args); err != nil {
		return err
	}
	fs := flag.NewFlagSet("grpcplay "+m.name, flag.ContinueOnError)
	m.cmd.define(fs, m.Getenv)
	var argsUsage string
	withArgs, _ := m.cmd.(takesArgs)
	if withArgs != nil {
		argsUsage = " " + withArgs.argsUsage()
	}
	// The flag package prints its error and then the whole usage, which
	// scrolls the error away: parseArgs prints the usage only for --help,
	// and a wrong flag is reported by Execute, as one error.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	if _, own := m.cmd.(ownEnvironment); !own {
		if err := applyEnv(fs, m.Getenv); err != nil {
			return err
		}
	}
	positional, err := parseArgs(fs, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		m.printHelp(fs, argsUsage)
		return err
	}
	if err != nil {
		return fmt.Errorf("%w\nsee grpcplay %s --help", err, m.name)
	}
	if withArgs != nil {
		withArgs.setArgs(positional)
	} else if len(positional) > 0 {
		return fmt.Errorf("%s takes no arguments, got %q", m.name, positional)
	}
	if err := errors.Join(m.cmd.validate(m.Getenv)...); err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	return m.setUpLog()
}

// lookUp finds the command named by args[0], or prints the usage.
func (m *Main) lookUp(args []string) error {
	if len(args) == 0 {
		fmt.Fprint(m.Stderr, usage())
		return fmt.Errorf("no command given")
	}
	m.name = args[0]
	switch m.name {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(m.Stdout, usage())
		return flag.ErrHelp
	}
	for _, c := range commands {
		if c.name == m.name {
			m.cmd, m.purpose = c.new(), c.purpose
			return nil
		}
	}
	fmt.Fprint(m.Stderr, usage())
	return fmt.Errorf("unknown command %q", m.name)
}

// parseArgs parses the flags of fs and returns the arguments between them.
// Flags may follow the arguments too, as in "call items 3 -o json", and a
// negative length is an argument, not a flag, so that the backend can
// explain why it is refused.
func parseArgs(fs *flag.FlagSet, rest []string) ([]string, error) {
	var positional []string
	for len(rest) > 0 {
		if _, err := strconv.Atoi(rest[0]); err == nil {
			positional = append(positional, rest[0])
			rest = rest[1:]
			continue
		}
		if err := fs.Parse(rest); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return nil, err
			}
			return nil, asTyped(err)
		}
		if fs.NArg() == 0 {
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	return positional, nil
}

// printHelp prints a command's --help to stdout: its purpose, its usage,
// and its flags as users type them (--name; a one-letter flag -x).
func (m *Main) printHelp(fs *flag.FlagSet, argsUsage string) {
	fmt.Fprintf(m.Stdout, "grpcplay %s: %s.\n\nUsage: grpcplay %s", m.name, m.purpose, m.name)
	hasFlags := false
	fs.VisitAll(func(*flag.Flag) { hasFlags = true })
	if !hasFlags {
		fmt.Fprintf(m.Stdout, "%s\n", argsUsage)
		return
	}
	fmt.Fprintf(m.Stdout, " [flags]%s\n\nFlags:\n", argsUsage)
	var defaults strings.Builder
	fs.SetOutput(&defaults)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
	fmt.Fprint(m.Stdout, flagLine.ReplaceAllString(defaults.String(), "$1--$2"))
}

// flagLine is the start of a flag's line in flag.PrintDefaults, "  -name",
// for a name longer than one letter.
var flagLine = regexp.MustCompile(`(?m)^(  )-([^-\s][^\s]+)`)

// asTyped writes the flag package's "-name" in its errors as "--name",
// the way the help and the docs write it.
func asTyped(err error) error {
	return errors.New(flagInError.ReplaceAllString(err.Error(), "$1--$2"))
}

var flagInError = regexp.MustCompile(`(not defined: |needs an argument: |for flag |for )-([^-\s][^\s:]+)`)

// setUpLog builds the logger of the run. Servers log to stderr through a
// buffer, so that a line per call is not a system call per call (see
// telemetry.BufferedWriter); other commands write their few lines straight
// through.
func (m *Main) setUpLog() error {
	var out io.Writer = m.Stderr
	format, level := "", slog.LevelInfo
	if s := m.server(); s != nil {
		m.servers.logOut = telemetry.NewBufferedWriter(m.Stderr)
		out, format, level = m.servers.logOut, s.logFormat, s.logLevel
	}
	log, err := telemetry.NewLogger(out, format, level)
	if err != nil {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	m.log = log
	m.servers.log = log
	return nil
}

// server is the command's server settings, or nil when it runs no servers.
func (m *Main) server() *serverFlags {
	if s, ok := m.cmd.(interface{ settings() *serverFlags }); ok {
		return s.settings()
	}
	return nil
}

// Run starts a server command's servers and returns once they listen, or
// runs any other command to completion.
func (m *Main) Run(ctx context.Context) error {
	if s := m.server(); s != nil {
		setServerGC()
		m.servers.trustedProxies = s.trustedProxies
		if err := m.servers.startTracing(ctx, m.Getenv, s.service); err != nil {
			return err
		}
	}
	return m.cmd.run(ctx, m)
}

// Wait blocks until ctx ends or a server fails.
func (m *Main) Wait(ctx context.Context) error {
	return m.servers.wait(ctx, m.grace())
}

// Close stops the servers gracefully, within one grace period, in the order
// of shutdownStages.
func (m *Main) Close() error {
	return m.servers.close(m.grace())
}

func (m *Main) grace() time.Duration {
	if s := m.server(); s != nil {
		return s.grace
	}
	return 0
}

// GRPCAddr is the address the backend listens on, once Run has returned.
func (m *Main) GRPCAddr() string { return m.servers.grpcLis.Addr().String() }

// HTTPURL is the frontend's base URL, once Run has returned.
func (m *Main) HTTPURL() string {
	return "http://" + dialable(m.servers.httpLis.Addr(), "localhost")
}

// RESTURL is the gateway's base URL once Run has returned, or "" when it is
// off.
func (m *Main) RESTURL() string { return m.servers.restURL() }

// MetricsURL is the backend's /metrics, once Run has returned; "" when off.
func (m *Main) MetricsURL() string {
	if m.servers.metricsLis == nil {
		return ""
	}
	return "http://" + dialable(m.servers.metricsLis.Addr(), "localhost") + "/metrics"
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

// positive refuses a duration that would make every call fail.
func positive(name string, d time.Duration) []error {
	if d <= 0 {
		return []error{fmt.Errorf("--%s must be more than 0, got %v", name, d)}
	}
	return nil
}
