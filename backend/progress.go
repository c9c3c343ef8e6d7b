package backend

import (
	"context"
	"net"
	"strings"
	"sync"

	"google.golang.org/grpc/stats"

	"github.com/grpcplay/grpcplay/internal/connlimit"
)

// progress caps the gRPC listener (see internal/connlimit) and tells it
// which connections do useful work, so that a full port evicts the ones
// that do not. Bytes are no measure on HTTP/2: a connection that only
// answers pings, or only holds health Watches, reads and writes some. What
// counts is a call's messages, the start and end of a call, and a unary
// call in flight, which holds its connection until it ends. Health calls
// count for nothing: an orchestrator's probes are not worth a slot an
// honest client could use.
//
// It is a stats.Handler, which grpc-go marks EXPERIMENTAL: only it sees
// each connection and each message; interceptors see neither.
type progress struct {
	cfg       Config
	mu        sync.Mutex
	listeners []*connlimit.Listener
}

// listen caps lis at cfg.MaxConns.
func (p *progress) listen(lis net.Listener) net.Listener {
	l := connlimit.New(lis, connlimit.Options{Max: p.cfg.MaxConns, ReportedProgress: true, Port: "grpc", Metrics: p.cfg.Metrics})
	p.mu.Lock()
	p.listeners = append(p.listeners, l)
	p.mu.Unlock()
	return l
}

type progressConnKey struct{}

type progressCall struct {
	conn    *connlimit.Conn
	release func()
}

type progressCallKey struct{}

func (p *progress) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, l := range p.listeners {
		if c := l.Lookup(info.RemoteAddr); c != nil {
			return context.WithValue(ctx, progressConnKey{}, c)
		}
	}
	return ctx
}

func (p *progress) HandleConn(context.Context, stats.ConnStats) {}

func (p *progress) TagRPC(ctx context.Context, info *stats.RPCTagInfo) context.Context {
	c, ok := ctx.Value(progressConnKey{}).(*connlimit.Conn)
	if !ok || strings.HasPrefix(info.FullMethodName, healthMethodPrefix) {
		return ctx
	}
	return context.WithValue(ctx, progressCallKey{}, &progressCall{conn: c})
}

func (p *progress) HandleRPC(ctx context.Context, s stats.RPCStats) {
	call, ok := ctx.Value(progressCallKey{}).(*progressCall)
	if !ok {
		return
	}
	switch s := s.(type) {
	case *stats.Begin:
		// A unary call holds its connection however long its handler
		// takes; a stream proves itself by its messages, so that one
		// whose reader stopped is evictable.
		if !s.IsClientStream && !s.IsServerStream {
			call.release = call.conn.Hold()
			return
		}
		call.conn.Progress()
	case *stats.InPayload, *stats.OutPayload:
		call.conn.Progress()
	case *stats.End:
		if call.release != nil {
			call.release()
		}
		call.conn.Progress()
	}
}
