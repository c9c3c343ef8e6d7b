package backend

import (
	"context"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/stats"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/connlimit"
)

// guard holds the bounds a hostile client must not get around, where an
// interceptor cannot enforce them: an interceptor runs only once the request
// has arrived, and a call whose request never comes would hold its stream
// without a deadline. The tap handle runs as the HEADERS frame is read; the
// stats handler sees every call end, including those reset before their
// request.
type guard struct {
	cfg Config
	// conns finds the connection behind a call by its remote address, the
	// one key that both the listener and the stats handler see.
	conns sync.Map // string → *guardedConn
}

// listener caps lis at cfg.MaxConns and tracks its connections.
func (g *guard) listener(lis net.Listener) net.Listener {
	return &guardedListener{Listener: connlimit.Listener(lis, g.cfg.MaxConns), g: g}
}

type guardedListener struct {
	net.Listener
	g *guard
}

func (l *guardedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	gc := &guardedConn{Conn: c, g: l.g, key: c.RemoteAddr().String()}
	gc.resets.init(l.g.cfg.MaxResetBurst, l.g.cfg.MaxResetsPerSecond)
	l.g.conns.Store(gc.key, gc)
	return gc, nil
}

// guardedConn is one client connection, with its budget of reset streams.
type guardedConn struct {
	net.Conn
	g         *guard
	key       string
	resets    tokenBucket
	closeOnce sync.Once
	cut       atomic.Bool // closed for its resets: logged once
}

func (c *guardedConn) Close() error {
	c.closeOnce.Do(func() { c.g.conns.CompareAndDelete(c.key, c) })
	return c.Conn.Close()
}

type connKey struct{}

// TagConn gives every call of a connection the connection's budget.
func (g *guard) TagConn(ctx context.Context, info *stats.ConnTagInfo) context.Context {
	if info.RemoteAddr == nil {
		return ctx
	}
	if c, ok := g.conns.Load(info.RemoteAddr.String()); ok {
		return context.WithValue(ctx, connKey{}, c)
	}
	return ctx
}

func (g *guard) HandleConn(context.Context, stats.ConnStats) {}

func (g *guard) TagRPC(ctx context.Context, _ *stats.RPCTagInfo) context.Context { return ctx }

// HandleRPC counts the calls a client cancels. A client cancels a call by
// resetting its stream, so a connection that spends its budget is resetting
// streams far faster than an honest one (a rapid reset, CVE-2023-44487):
// grpc-go bounds the handlers such a client keeps busy, but not the CPU it
// burns, so the connection is closed.
func (g *guard) HandleRPC(ctx context.Context, s stats.RPCStats) {
	end, ok := s.(*stats.End)
	if !ok || status.Code(end.Error) != codes.Canceled {
		return
	}
	c, ok := ctx.Value(connKey{}).(*guardedConn)
	if !ok || c.resets.take(time.Now()) || !c.cut.CompareAndSwap(false, true) {
		return
	}
	g.cfg.Logger.Info("closing a connection that resets streams faster than any honest client",
		"peer", c.key, "resets_per_second", g.cfg.MaxResetsPerSecond, "burst", g.cfg.MaxResetBurst)
	_ = c.Close()
}

// tap gives every call a server-side deadline from the moment its HEADERS
// arrive, whatever the client asked for: an interceptor would start it only
// once the request had arrived, and a request that never comes would leave
// the stream without one.
func (g *guard) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	limit := g.cfg.MaxCallDuration
	if g.streaming(info.FullMethodName) {
		limit = g.cfg.MaxStreamDuration
	}
	// No cancel to call: grpc-go cancels the stream's own context, this
	// one's parent, when the stream ends, which also stops this timer.
	ctx, cancel := context.WithTimeout(ctx, limit)
	_ = cancel
	return ctx, nil
}

// streaming says whether method is a streaming call: getStream, the health
// Watch and reflection.
func (g *guard) streaming(method string) bool {
	return method == api.Api_GetStream_FullMethodName ||
		strings.HasSuffix(method, "/Watch") ||
		strings.Contains(method, "ServerReflection")
}

// tokenBucket allows burst events at once and rate a second after that.
type tokenBucket struct {
	mu     sync.Mutex
	tokens float64
	burst  float64
	rate   float64
	last   time.Time
}

func (b *tokenBucket) init(burst, rate int) {
	b.tokens, b.burst, b.rate = float64(burst), float64(burst), float64(rate)
}

// take spends a token and says whether there was one.
func (b *tokenBucket) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}
