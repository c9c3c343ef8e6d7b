package backend

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"runtime"
	"runtime/debug"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/reflection"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
)

// Config holds the server's settings. The zero value of a field means "use
// the default" so that callers set only what they change.
type Config struct {
	Limits Limits
	// MaxConnectionAge closes each client connection after this long (plus
	// MaxConnectionAgeGrace for calls in flight), so clients re-resolve DNS
	// and spread over replicas that were added since they connected.
	MaxConnectionAge      time.Duration
	MaxConnectionAgeGrace time.Duration
	// MaxConcurrentStreams bounds the calls one connection may run at once.
	MaxConcurrentStreams uint32
	Logger               *slog.Logger
}

// DefaultConfig is what `grpcplay backend` runs with.
var DefaultConfig = Config{
	Limits:                DefaultLimits,
	MaxConnectionAge:      5 * time.Minute,
	MaxConnectionAgeGrace: 30 * time.Second,
	MaxConcurrentStreams:  1000,
}

func (c Config) withDefaults() Config {
	d := DefaultConfig
	if c.Limits.MaxItems == 0 {
		c.Limits.MaxItems = d.Limits.MaxItems
	}
	if c.Limits.MaxStreamItems == 0 {
		c.Limits.MaxStreamItems = d.Limits.MaxStreamItems
	}
	if c.Limits.MaxNameBytes == 0 {
		c.Limits.MaxNameBytes = d.Limits.MaxNameBytes
	}
	if c.MaxConnectionAge == 0 {
		c.MaxConnectionAge = d.MaxConnectionAge
	}
	if c.MaxConnectionAgeGrace == 0 {
		c.MaxConnectionAgeGrace = d.MaxConnectionAgeGrace
	}
	if c.MaxConcurrentStreams == 0 {
		c.MaxConcurrentStreams = d.MaxConcurrentStreams
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server is a gRPC server hosting api.Api, grpc.health.v1 and reflection.
type Server struct {
	grpc   *grpc.Server
	health *health.Server
	log    *slog.Logger
}

// maxRecvBytes bounds a request. Requests are tiny: the largest is a name.
const maxRecvBytes = 64 << 10

// NewServer builds a Server.
func NewServer(cfg Config) *Server {
	cfg = cfg.withDefaults()
	s := &Server{health: health.NewServer(), log: cfg.Logger}
	s.grpc = grpc.NewServer(
		grpc.MaxRecvMsgSize(maxRecvBytes),
		grpc.MaxConcurrentStreams(cfg.MaxConcurrentStreams),
		grpc.ConnectionTimeout(10*time.Second),
		grpc.KeepaliveParams(keepalive.ServerParameters{
			MaxConnectionIdle:     15 * time.Minute,
			MaxConnectionAge:      cfg.MaxConnectionAge,
			MaxConnectionAgeGrace: cfg.MaxConnectionAgeGrace,
			Time:                  time.Minute,
			Timeout:               20 * time.Second,
		}),
		// Clients may ping idle connections, but no more than this often.
		grpc.KeepaliveEnforcementPolicy(keepalive.EnforcementPolicy{
			MinTime:             10 * time.Second,
			PermitWithoutStream: true,
		}),
		// api.Codec writes the same bytes as the standard codec without
		// protobuf's reflection, and sends the replies encodedServiceDesc
		// encodes itself.
		grpc.ForceServerCodecV2(api.Codec{}),
		// Calls run on goroutines that are kept, whose stacks have already
		// grown, instead of a new goroutine each: growing a fresh stack was
		// a sixth of sayHello's CPU time.
		grpc.NumStreamWorkers(uint32(4*runtime.GOMAXPROCS(0))),
		grpc.ChainUnaryInterceptor(s.unaryInterceptor),
		grpc.ChainStreamInterceptor(s.streamInterceptor),
	)
	s.grpc.RegisterService(encodedServiceDesc(), NewService(cfg.Limits))
	healthpb.RegisterHealthServer(s.grpc, s.health)
	reflection.Register(s.grpc)
	s.health.SetServingStatus(api.Api_ServiceDesc.ServiceName, healthpb.HealthCheckResponse_SERVING)
	return s
}

// Serve accepts connections on lis until Shutdown. It returns nil after a
// shutdown and the accept error otherwise.
func (s *Server) Serve(lis net.Listener) error {
	err := s.grpc.Serve(lis)
	if errors.Is(err, grpc.ErrServerStopped) {
		return nil
	}
	return err
}

// Shutdown reports NOT_SERVING so that health checks and load balancers stop
// sending new calls, then lets the calls in flight finish. When ctx ends first,
// the remaining calls are cancelled.
func (s *Server) Shutdown(ctx context.Context) {
	s.health.Shutdown()
	stopped := make(chan struct{})
	go func() {
		s.grpc.GracefulStop()
		close(stopped)
	}()
	select {
	case <-stopped:
	case <-ctx.Done():
		s.log.Warn("grace period over; cancelling calls in flight")
		s.grpc.Stop()
		<-stopped
	}
}

// A panic in one handler must not take down every other call in the process.
// Each call is logged at debug level, so that a deployment can see which
// replica served what without paying for it by default.
func (s *Server) unaryInterceptor(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (resp any, err error) {
	defer s.finish(ctx, info.FullMethod, time.Now(), &err)
	return handler(ctx, req)
}

func (s *Server) streamInterceptor(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) (err error) {
	defer s.finish(ss.Context(), info.FullMethod, time.Now(), &err)
	return handler(srv, ss)
}

func (s *Server) finish(ctx context.Context, method string, start time.Time, err *error) {
	if p := recover(); p != nil {
		s.log.Error("panic in handler", "method", method, "panic", p, "stack", string(debug.Stack()))
		*err = status.Error(codes.Internal, "internal error")
	}
	if s.log.Enabled(ctx, slog.LevelDebug) {
		s.log.DebugContext(ctx, "call", "method", method,
			"code", status.Code(*err).String(), "duration", time.Since(start))
	}
}
