package backend

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"runtime/debug"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/connlimit"
	"github.com/grpcplay/grpcplay/internal/settings"
	"github.com/grpcplay/grpcplay/internal/telemetry"
	"github.com/grpcplay/grpcplay/internal/vtcodec"
)

// Config holds the server's settings. A zero field takes its default, so
// that callers set only what they change; a negative one is an error
// (Validate).
type Config struct {
	Limits Limits
	// MaxConnectionAge closes each client connection after this long (plus
	// MaxConnectionAgeGrace for calls in flight), so clients re-resolve DNS
	// and spread over replicas that were added since they connected.
	MaxConnectionAge      time.Duration
	MaxConnectionAgeGrace time.Duration
	// MaxConcurrentStreams bounds the calls one connection may run at once.
	MaxConcurrentStreams uint32
	// KeepaliveMinTime is how often a client may ping. Pings any more often
	// earn a GOAWAY "too_many_pings" after two strikes.
	KeepaliveMinTime time.Duration
	// MaxConnectionIdle closes a connection that has had no call for this
	// long, so that idle clients do not hold descriptors and memory; a
	// client reconnects when it next calls.
	MaxConnectionIdle time.Duration
	// MaxConns caps the connections the listener holds open; at the cap,
	// a new one evicts one that makes no progress, or is refused (see
	// internal/connlimit).
	MaxConns int
	// MaxHeaderListBytes caps a call's metadata, counted as HTTP/2 does
	// (name + value + 32 bytes a field) after HPACK decoding, so that
	// headers repeated by index cost their full size.
	MaxHeaderListBytes uint32
	// MaxCallDuration and MaxStreamDuration are server-side deadlines from
	// the moment a call's headers arrive: unary calls, and streaming calls
	// (getStream, health Watch, reflection). A call whose request never
	// arrives ends at them too.
	MaxCallDuration   time.Duration
	MaxStreamDuration time.Duration
	// MaxResetsPerSecond and MaxResetBurst are how fast a connection may
	// cancel calls; one that cancels faster is closed (rapid reset).
	MaxResetsPerSecond int
	MaxResetBurst      int
	// MaxStreamingCallsPerConn and MaxStreamingCalls bound api.Api's
	// streaming calls (getStream) running at once on one connection and in
	// the process; one over either is refused with ResourceExhausted. A
	// stream whose reader stalled keeps grpc-go's 64 KiB write quota of
	// small items queued, several times the memory of any other call
	// (docs/RELIABILITY.md).
	MaxStreamingCallsPerConn int
	MaxStreamingCalls        int
	// TLS, when set, serves TLS with this config (see internal/tlsconfig);
	// nil serves plaintext, as the post does.
	TLS *tls.Config
	// Logger gets one line per call (see callLevel: info when OK, debug for
	// health checks and the client's own mistakes, warn for the server's
	// failures), and the server's warnings and errors. nil discards them.
	Logger *slog.Logger

	// Observability: each is off when nil, and then costs nothing.
	// Metrics gets the gRPC server metrics (see internal/telemetry), and
	// TracerProvider a span per call, continuing the caller's trace.
	Metrics        *prometheus.Registry
	TracerProvider trace.TracerProvider
}

// DefaultConfig is what `grpcplay backend` runs with.
var DefaultConfig = Config{
	Limits:           DefaultLimits,
	MaxConnectionAge: 5 * time.Minute,
	// The grace covers the longest stream a server allows, so that a
	// connection's age never cuts a stream short of its own deadline.
	MaxConnectionAgeGrace: defaultMaxStreamDuration + 10*time.Second,
	// Enough for a frontend's live streams (100 by default) and its page
	// calls on one connection.
	MaxConcurrentStreams: 128,
	KeepaliveMinTime:     10 * time.Second,
	MaxConnectionIdle:    2 * time.Minute,
	// An eighth of the descriptors: the four ports together take at most
	// half. A backend's clients are frontends and services, each with one
	// long-lived connection, so 64 is plenty; docs/RELIABILITY.md gives
	// the memory this and the stream limits allow at most.
	MaxConns:           connlimit.Share(8, 64),
	MaxHeaderListBytes: 8 << 10,
	MaxCallDuration:    30 * time.Second,
	MaxStreamDuration:  defaultMaxStreamDuration,
	// An honest client cancels a call when its user goes away or its
	// deadline passes: a handful a second. The attack is tens of thousands.
	MaxResetsPerSecond: 200,
	MaxResetBurst:      1000,
	// As many as MaxConcurrentStreams lets one connection run, so that a
	// frontend's calls (its live streams and its pages' getStreams) wait
	// for a stream, as grpc-go makes them, and are never refused; the
	// process runs two such connections' worth, which bounds what stalled
	// streams pin (docs/RELIABILITY.md).
	MaxStreamingCallsPerConn: 128,
	MaxStreamingCalls:        256,
}

// defaultMaxStreamDuration is the client's own default stream deadline
// (client.DefaultStreamTimeout).
const defaultMaxStreamDuration = 5 * time.Minute

func (c Config) withDefaults() Config {
	settings.Fill(&c, DefaultConfig)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server is a gRPC server hosting api.Api, grpc.health.v1 and reflection.
type Server struct {
	grpc   *grpc.Server
	health *healthService
	log    *slog.Logger
	svc    api.ApiServer
	guard  *guard
	// progress caps the listener and evicts its idle connections.
	progress *progress
	// okLoggers holds, for each method the server hosts, the logger of its
	// calls that end OK, with the method and code attributes already
	// formatted: most lines are those, and formatting them again on every
	// call was a tenth of the line's cost.
	okLoggers map[string]*slog.Logger
}

// healthMethodPrefix starts the full method names of grpc.health.v1.
var healthMethodPrefix = "/" + healthpb.Health_ServiceDesc.ServiceName + "/"

// streamWorkers covers the calls a backend has in flight under load from its
// frontends (the benchmarks run 50): a call holds its worker while it waits
// for its request's DATA frame too. An idle worker costs only its stack.
const streamWorkers = 64

// maxRecvBytes bounds a request. Requests are tiny: the largest is a name.
const maxRecvBytes = 64 << 10

// New builds a Server hosting NewService(cfg.Limits).
func New(cfg Config) *Server {
	return NewFor(cfg, NewService(cfg.withDefaults().Limits))
}

// NewFor builds a Server hosting svc, such as a Service wrapped to count
// its calls (bench does, to show that every face runs the same methods).
func NewFor(cfg Config, svc api.ApiServer) *Server {
	cfg = cfg.withDefaults()
	s := &Server{health: newHealthService(), log: cfg.Logger, guard: &guard{cfg: cfg}, progress: &progress{cfg: cfg}, svc: svc}
	observe, observing := telemetry.GRPCServerOptions(cfg.Metrics, cfg.TracerProvider)
	opts := append(observe, s.options(cfg)...)
	if cfg.TLS != nil {
		opts = append(opts, grpc.Creds(credentials.NewTLS(cfg.TLS)))
	}
	s.grpc = grpc.NewServer(opts...)
	api.RegisterApiServer(s.grpc, s.svc)
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	observing(s.grpc)
	services := s.grpc.GetServiceInfo()
	s.okLoggers = okLoggers(s.log, services)
	s.guard.learn(services)
	s.health.SetServingStatus(api.Api_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s
}

// options are the server's limits, timeouts and handlers.
func (s *Server) options(cfg Config) []grpc.ServerOption {
	return []grpc.ServerOption{
		grpc.MaxRecvMsgSize(maxRecvBytes),
		// A reply over the client's limit would fail there after the work of
		// building and sending it; failing here says why, as ResourceExhausted.
		grpc.MaxSendMsgSize(api.MaxReplyBytes),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.MaxHeaderListSize(cfg.MaxHeaderListBytes),
		// Fixed windows: grpc-go's BDP estimator could otherwise grow a
		// stream's receive window, which a client may fill with data the
		// handler never reads. Requests are tiny, so 64 KiB costs nothing.
		grpc.InitialWindowSize(64 << 10),
		grpc.InitialConnWindowSize(64 << 10),
		grpc.ConnectionTimeout(10 * time.Second),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     cfg.MaxConnectionIdle,
			MaxConnectionAge:      cfg.MaxConnectionAge,
			MaxConnectionAgeGrace: cfg.MaxConnectionAgeGrace,
			Time:                  time.Minute,
			Timeout:               20 * time.Second,
		}),
		// Clients may ping idle connections, but no more than this often.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             cfg.KeepaliveMinTime,
			PermitWithoutStream: true,
		}),
		grpc.InTapHandle(s.guard.tap),
		// The same bytes as the standard codec, without protobuf's
		// reflection for api's messages. ForceServerCodecV2 is experimental
		// in grpc-go; no stable option picks a server's codec.
		grpc.ForceServerCodecV2(vtcodec.Codec{}),
		// Calls run on goroutines that are kept, whose stacks have already
		// grown, instead of a new goroutine each: growing a fresh stack was
		// a sixth of sayHello's CPU time. A call that finds every worker
		// busy still gets its own goroutine.
		grpc.NumStreamWorkers(streamWorkers),
		grpc.ChainUnaryInterceptor(s.unaryInterceptor, s.progress.unary),
		grpc.ChainStreamInterceptor(s.streamInterceptor, s.progress.stream),
	}
}

// Service is the api.Api implementation the server hosts, for another face
// of the same service in this process (the REST gateway).
func (s *Server) Service() api.ApiServer { return s.svc }

// Serve accepts connections on lis until Shutdown. It returns nil after a
// shutdown and the accept error otherwise.
func (s *Server) Serve(lis net.Listener) error {
	err := s.grpc.Serve(s.guard.listener(s.progress.listen(lis)))
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// SetNotServing reports NOT_SERVING from now on, so that health checks and
// load balancers stop sending new calls while the server still answers. A
// process with other faces calls it before draining them; Shutdown calls it
// too.
func (s *Server) SetNotServing() { s.health.Shutdown() }

// Shutdown reports NOT_SERVING so that health checks and load balancers stop
// sending new calls, then lets the calls in flight finish. When ctx ends first,
// the remaining calls are cancelled, and Shutdown returns ctx's error.
func (s *Server) Shutdown(ctx context.Context) error {
	s.SetNotServing()
	s.health.endWatches()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
		return nil
	case <-ctx.Done():
		s.log.Warn("grace period over; cancelling calls in flight")
		s.grpc.Stop()
		<-stopped
		return ctx.Err()
	}
}

// A panic in one handler must not take down every other call in the process.
// Each call is logged once, at info level, when it ends: one line for a
// whole stream, never one per item. Health checks are logged at debug: probes
// come every few seconds from every orchestrator and would drown the calls.
// The level is checked first, so that a server logging at warn builds no
// attributes at all.
func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer s.finish(ctx, info.FullMethod, time.Now(), &err)
	return handler(ctx, req)
}

func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer s.finish(ss.Context(), info.FullMethod, time.Now(), &err)
	if s.guard.budgeted(info.FullMethod) {
		c, err := s.guard.takeStream(ss.Context())
		if err != nil {
			return err
		}
		defer s.guard.releaseStream(c)
	}
	return handler(srv, ss)
}

func (s *Server) finish(ctx context.Context, method string, start time.Time, err *error) {
	if p := recover(); p != nil {
		s.log.ErrorContext(ctx, "panic in handler", "method", method, "panic", p, "stack", string(debug.Stack()))
		*err = status.Error(codes.Internal, "internal error")
	}
	conn := s.guard.conn(ctx)
	s.guard.settle(ctx, conn)
	level := callLevel(ctx, method, *err)
	if !s.log.Enabled(ctx, level) {
		return
	}
	code := status.Code(*err)
	log, attrs := s.log, make([]slog.Attr, 0, 5)
	if l, ok := s.okLoggers[method]; ok && code == codes.OK {
		log = l
	} else {
		attrs = append(attrs, slog.String("method", method), slog.String("code", code.String()))
	}
	attrs = append(attrs, slog.Duration("duration", time.Since(start)))
	if conn != nil {
		attrs = append(attrs, slog.String("peer", conn.peer))
	} else if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer", p.Addr.String()))
	}
	if id := telemetry.TraceID(ctx); id != "" {
		attrs = append(attrs, slog.String("trace_id", id))
	}
	telemetry.LogLine(ctx, log, level, "call", attrs...)
}

// okLoggers makes Server.okLoggers: the line of an OK call is the same as
// finish would build, since attributes given to With come first.
func okLoggers(log *slog.Logger, services map[string]grpc.ServiceInfo) map[string]*slog.Logger {
	loggers := map[string]*slog.Logger{}
	for name, info := range services {
		for _, m := range info.Methods {
			method := "/" + name + "/" + m.Name
			loggers[method] = log.With(slog.String("method", method), slog.String("code", codes.OK.String()))
		}
	}
	return loggers
}

// callLevel is how loud a call's line is. Health checks and the client's own
// mistakes (a cancel, a bad argument, a passed deadline) are debug, so that
// no client can flood the log; a call the server failed is a warning. A
// call whose client reset it while it ran is the client's doing too,
// whatever the handler returned.
func callLevel(ctx context.Context, method string, err error) slog.Level {
	if strings.HasPrefix(method, healthMethodPrefix) || ctx.Err() != nil {
		return slog.LevelDebug
	}
	switch status.Code(err) {
	case codes.OK:
		return slog.LevelInfo
	case codes.Internal, codes.Unknown, codes.DataLoss:
		return slog.LevelWarn
	default:
		return slog.LevelDebug
	}
}
