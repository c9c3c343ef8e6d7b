// Package frontend is the web frontend of grpcplay: the post's Flask page,
// served by net/http from the one shared gRPC client, plus a live view that
// streams getStream to the browser with Server-Sent Events.
package frontend

import (
	"context"
	"html/template"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/clientlimit"
	"github.com/grpcplay/grpcplay/internal/connlimit"
	"github.com/grpcplay/grpcplay/internal/httpserver"
	"github.com/grpcplay/grpcplay/internal/settings"
)

// Backend is what the frontend needs from api.Api; *client.Client satisfies it.
type Backend interface {
	SayHello(ctx context.Context, name string) (string, error)
	GetAll(ctx context.Context, length int32) ([]*api.Item, error)
	GetStream(ctx context.Context, length int32) iter.Seq2[*api.Item, error]
	Ready(ctx context.Context) error
}

// Config holds the frontend's settings. A zero field takes its default;
// a negative one is an error (Validate).
type Config struct {
	Timeout      time.Duration // per-request deadline for the page's three calls (default 5s)
	LiveTimeout  time.Duration // deadline of one live (SSE) stream (default 5m)
	MaxPageItems int32         // largest getAll / getStream length the page accepts (default 1000)
	MaxLiveItems int32         // largest length the live view accepts (default 100_000)
	// MaxLiveStreams bounds the live streams open at once (default 100).
	// Each holds a backend stream on the shared connection for up to
	// LiveTimeout; unbounded, they could use up the connection's concurrent
	// stream limit and starve the page. Clients (IP addresses) share them
	// max-min fairly (clientlimit.Shares): a client holding fewer than the
	// others takes a slot from the largest holder. Behind a proxy, name it
	// in TrustedProxies.
	MaxLiveStreams int
	// TrustedProxies are the peers whose X-Forwarded-For names the client
	// for the fair shares (none by default: see clientlimit.Proxies).
	TrustedProxies clientlimit.Proxies
	// SlowReader is the least rate a live stream's reader must take its
	// events at (default clientlimit.DefaultMinRate, 32 KiB/s); a slower one
	// is dropped, so that it frees its slot soon.
	SlowReader clientlimit.MinRate
	// Logger gets one line per request (info; debug for probes and
	// /metrics) and the server's warnings. nil discards them.
	Logger *slog.Logger

	// Observability: each is off when zero, and then costs nothing.
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

	// Pages are served besides the frontend's own, each linked from the
	// navigation: grpcplay's CLI mounts /compare (bench/compare) here.
	Pages []Page
	// MaxConns caps the connections the page's listener holds open; at the
	// cap, a new one evicts an idle one, or is refused (see
	// internal/connlimit).
	MaxConns int
}

// DefaultConfig is what `grpcplay frontend` runs with.
var DefaultConfig = Config{
	Timeout:        5 * time.Second,
	LiveTimeout:    5 * time.Minute,
	MaxPageItems:   1000,
	MaxLiveItems:   100_000,
	MaxLiveStreams: 100,
	SlowReader:     clientlimit.DefaultMinRate,
	// An eighth of the descriptors, so that the four ports together leave
	// half to the process, and at most 1024: a connection whose client asks
	// for the largest pages and reads none of them peaks at about 0.85 MB
	// (reliability: TestUnreadRepliesWorstCase), so 1024 take about 0.9 GB.
	MaxConns: connlimit.Share(8, 1024),
}

// Defaults of the page's query parameters: what the post's page shows.
const (
	defaultName        = "Gonzalo"
	defaultItems       = "10"
	defaultStream      = "5"
	defaultLiveLength  = 100
	readyTimeout       = 2 * time.Second
	writeTimeoutMargin = 10 * time.Second
)

func (c Config) withDefaults() Config {
	settings.Fill(&c, DefaultConfig)
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
	pages   map[string]*template.Template // by file name
	handler http.Handler
	http    *http.Server
	// liveCtx ends when Shutdown starts. Live streams and the Pages' work
	// in the background (Site.Go) watch it because they run far longer
	// than any request and http.Server.Shutdown waits for them; page
	// requests do not, so that they finish within the grace.
	liveCtx context.Context
	endLive context.CancelFunc
	// liveSlots are the live streams' slots, shared fairly by client.
	liveSlots *clientlimit.Shares
	// background holds what Pages run past their requests (Site.Go).
	background sync.WaitGroup
}

// New builds a Server that calls b. Templates are parsed here, once; a
// broken template is a build error, so New panics on one.
func New(cfg Config, b Backend) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, backend: b, log: cfg.Logger, pages: mustParsePages(cfg.Pages, cfg.DebugPage)}
	s.liveCtx, s.endLive = context.WithCancel(context.Background())
	s.liveSlots = clientlimit.NewShares(cfg.MaxLiveStreams, cfg.TrustedProxies)
	s.liveSlots.Register(cfg.Metrics, "live")
	s.handler = s.routes()
	// Page responses must be written within the backend deadline plus
	// rendering; the SSE handler extends its own deadline per event.
	s.http = httpserver.New(s.handler, cfg.Timeout+writeTimeoutMargin, cfg.Logger)
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
	return httpserver.Serve(s.http, connlimit.New(lis, connlimit.Options{Max: s.cfg.MaxConns, Port: "page", Metrics: s.cfg.Metrics}))
}

// Shutdown stops accepting connections, ends the live streams and waits for
// the requests in flight. When ctx ends first, it closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	err := httpserver.Shutdown(ctx, s.http, s.log, "grace period over; closing connections")
	// Shutdown has ended the context of the Pages' background work; it
	// ends soon.
	s.background.Wait()
	return err
}
