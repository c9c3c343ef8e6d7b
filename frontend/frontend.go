// Package frontend is the web frontend of grpcplay: the post's Flask page,
// served by net/http from the one shared gRPC client, plus a live view that
// streams getStream to the browser with Server-Sent Events.
package frontend

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/connlimit"
)

// Backend is what the frontend needs from api.Api; *client.Client satisfies it.
type Backend interface {
	SayHello(ctx context.Context, name string) (string, error)
	GetAll(ctx context.Context, length int32) ([]*api.Item, error)
	GetStream(ctx context.Context, length int32) iter.Seq2[*api.Item, error]
	Ready(ctx context.Context) error
}

// Config holds the frontend's settings. A zero field takes its default.
type Config struct {
	Timeout      time.Duration // per-request deadline for the page's three calls (default 5s)
	LiveTimeout  time.Duration // deadline of one live (SSE) stream (default 5m)
	MaxPageItems int32         // largest getAll / getStream length the page accepts (default 1000)
	MaxLiveItems int32         // largest length the live view accepts (default 100_000)
	// MaxLiveStreams bounds the live streams open at once (default 100).
	// Each holds a backend stream on the shared connection for up to
	// LiveTimeout; unbounded, they could use up the connection's concurrent
	// stream limit and starve the page.
	MaxLiveStreams int
	// Logger gets one line per request (info; debug for probes and
	// /metrics) and the server's warnings. nil discards them.
	Logger *slog.Logger

	// Observability (issue 5): each is off when zero, and then costs nothing.
	// Metrics is served at /metrics and gets the HTTP request metrics; give
	// the backend client's gRPC metrics the same registry
	// (telemetry.GRPCClientOptions), for /debug's call counts.
	// TracerProvider starts a span per request, continuing the caller's
	// trace; the backend client should trace with it too.
	Metrics        *prometheus.Registry
	TracerProvider trace.TracerProvider
	// DebugPage serves /debug: the backend connection's state, the
	// addresses its target resolved to and the calls made so far.
	DebugPage bool

	// Compare, if set, lets /compare run a short gRPC-against-REST bench;
	// CompareInterval is the least time between two runs (default 30s).
	Compare         Comparer
	CompareInterval time.Duration
	// MaxConns caps the connections the page's listener holds open; at the
	// cap, new ones wait in the kernel's backlog (see internal/connlimit).
	MaxConns int
}

// DefaultConfig is what `grpcplay frontend` runs with.
var DefaultConfig = Config{
	Timeout:         5 * time.Second,
	LiveTimeout:     5 * time.Minute,
	MaxPageItems:    1000,
	MaxLiveItems:    100_000,
	MaxLiveStreams:  100,
	CompareInterval: 30 * time.Second,
	// An eighth of the descriptors, so that the four ports together leave
	// half to the process; 4096 idle browsers cost about 80 MB.
	MaxConns: connlimit.Share(8, 4096),
}

// Defaults of the page's query parameters: what the post's page shows.
const (
	defaultName        = "Gonzalo"
	defaultItems       = 10
	defaultStream      = 5
	defaultLiveLength  = 100
	readyTimeout       = 2 * time.Second
	maxHeaderBytes     = 64 << 10
	readHeaderTimeout  = 5 * time.Second
	readTimeout        = 10 * time.Second
	idleTimeout        = 30 * time.Second
	writeTimeoutMargin = 10 * time.Second
)

func (c Config) withDefaults() Config {
	d := DefaultConfig
	if c.Timeout <= 0 {
		c.Timeout = d.Timeout
	}
	if c.MaxConns <= 0 {
		c.MaxConns = d.MaxConns
	}
	if c.LiveTimeout <= 0 {
		c.LiveTimeout = d.LiveTimeout
	}
	if c.MaxPageItems <= 0 {
		c.MaxPageItems = d.MaxPageItems
	}
	if c.MaxLiveItems <= 0 {
		c.MaxLiveItems = d.MaxLiveItems
	}
	if c.MaxLiveStreams <= 0 {
		c.MaxLiveStreams = d.MaxLiveStreams
	}
	if c.CompareInterval <= 0 {
		c.CompareInterval = d.CompareInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server serves the frontend over HTTP.
type Server struct {
	cfg     Config
	backend Backend
	log     *slog.Logger
	pages   *pages
	handler http.Handler
	http    *http.Server
	// liveCtx ends when Shutdown starts. Live streams watch it because they
	// run far longer than any request and http.Server.Shutdown waits for
	// them; page requests do not, so that they finish within the grace.
	liveCtx   context.Context
	endLive   context.CancelFunc
	liveSlots chan struct{}
	compare   comparing
}

// New builds a Server that calls b. Templates are parsed here, once; a
// broken template is a build error, so New panics on one.
func New(cfg Config, b Backend) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, backend: b, log: cfg.Logger, pages: mustParsePages()}
	s.handler = s.routes()
	s.liveCtx, s.endLive = context.WithCancel(context.Background())
	s.liveSlots = make(chan struct{}, cfg.MaxLiveStreams)
	s.http = &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		// Page responses must be written within the backend deadline plus
		// rendering; the SSE handler extends its own deadline per event.
		WriteTimeout:   cfg.Timeout + writeTimeoutMargin,
		IdleTimeout:    idleTimeout,
		MaxHeaderBytes: maxHeaderBytes,
		ErrorLog:       slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
	}
	s.http.RegisterOnShutdown(s.endLive)
	return s
}

// Handler returns the frontend's routes, for tests or another http.Server.
func (s *Server) Handler() http.Handler {
	return s.handler
}

// Serve accepts connections on lis until Shutdown. It returns nil after a
// shutdown and the accept error otherwise.
func (s *Server) Serve(lis net.Listener) error {
	err := s.http.Serve(connlimit.Listener(lis, s.cfg.MaxConns))
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections, ends the live streams and waits for
// the requests in flight. When ctx ends first, it closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	// Shutdown has cancelled a /compare run in the background; it ends soon.
	s.compare.runs.Wait()
	if err != nil {
		s.log.Warn("grace period over; closing connections", "error", err)
		return errors.Join(err, s.http.Close())
	}
	return nil
}
