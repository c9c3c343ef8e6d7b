package backend

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/peer"

	"github.com/grpcplay/grpcplay/internal/connlimit"
)

// progress caps the gRPC listener (see internal/connlimit) and tells it
// which connections do useful work, so that a full port evicts the ones
// that do not. Bytes are no measure on HTTP/2: a connection that only
// answers pings, or only holds health Watches, reads and writes some. What
// counts is a call: a unary call holds its connection until it ends, and a
// stream proves itself by each message it sends or receives, so that one
// whose reader stopped is evictable. Health calls count for nothing: an
// orchestrator's probes are not worth a slot an honest client could use.
//
// Interceptors, not a stats.Handler: a stats handler would see the
// connection's preface too, but makes grpc-go build its events on every
// call, 23 allocations of a sayHello's 189.
type progress struct {
	cfg Config
	mu  sync.Mutex // serialises listen
	// listeners is read on every call, without a lock.
	listeners atomic.Pointer[[]*connlimit.Listener]
}

// listen caps lis at cfg.MaxConns.
func (p *progress) listen(lis net.Listener) net.Listener {
	l := connlimit.New(lis, connlimit.Options{Max: p.cfg.MaxConns, ReportedProgress: true, Port: "grpc", Metrics: p.cfg.Metrics})
	p.mu.Lock()
	defer p.mu.Unlock()
	var all []*connlimit.Listener
	if old := p.listeners.Load(); old != nil {
		all = append(all, *old...)
	}
	all = append(all, l)
	p.listeners.Store(&all)
	return l
}

// conn is the connection of the call ctx belongs to, nil when unknown.
func (p *progress) conn(ctx context.Context) *connlimit.Conn {
	pr, ok := peer.FromContext(ctx)
	if !ok || pr.Addr == nil {
		return nil
	}
	listeners := p.listeners.Load()
	if listeners == nil {
		return nil
	}
	for _, l := range *listeners {
		if c := l.Lookup(pr.Addr); c != nil {
			return c
		}
	}
	return nil
}

func (p *progress) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	c := p.conn(ctx)
	if c == nil || strings.HasPrefix(info.FullMethod, healthMethodPrefix) {
		return handler(ctx, req)
	}
	c.Hold()
	defer c.Release()
	return handler(ctx, req)
}

func (p *progress) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	c := p.conn(ss.Context())
	if c == nil || strings.HasPrefix(info.FullMethod, healthMethodPrefix) {
		return handler(srv, ss)
	}
	c.Progress()
	return handler(srv, &progressStream{ServerStream: ss, conn: c})
}

// progressStream marks its connection active at each message.
type progressStream struct {
	grpc.ServerStream
	conn *connlimit.Conn
}

func (s *progressStream) SendMsg(m any) error {
	err := s.ServerStream.SendMsg(m)
	if err == nil {
		s.conn.Progress()
	}
	return err
}

func (s *progressStream) RecvMsg(m any) error {
	err := s.ServerStream.RecvMsg(m)
	if err == nil {
		s.conn.Progress()
	}
	return err
}
