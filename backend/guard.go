package backend

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/tap"

	"github.com/grpcplay/grpcplay/api"
)

// guard holds the bounds a hostile client must not get around where an
// interceptor cannot enforce them: an interceptor runs only once the request
// has arrived, and a call reset before that never reaches one. The tap
// handle runs as each HEADERS frame is read.
type guard struct {
	cfg Config
	// streaming holds the full names of the streaming methods the server
	// hosts, and apiStreams those of api.Api, which the stream budgets
	// count: both set by learn before the server serves.
	streaming, apiStreams map[string]bool
	// streams counts api.Api's streaming calls running in the process.
	streams atomic.Int32
	// conns finds the connection behind a call by its remote address: the
	// same net.Addr value the listener saw and the call's peer carries, so
	// the lookup allocates nothing.
	conns sync.Map // net.Addr → *guardedConn
}

// listener tracks lis's connections.
func (g *guard) listener(lis net.Listener) net.Listener {
	return &guardedListener{Listener: lis, g: g}
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
	gc := &guardedConn{Conn: c, g: l.g, key: c.RemoteAddr()}
	gc.peer = gc.key.String()
	gc.aborts.init(l.g.cfg.MaxResetBurst, l.g.cfg.MaxResetsPerSecond)
	l.g.conns.Store(gc.key, gc)
	return gc, nil
}

// guardedConn is one client connection, with its budget of calls that end
// without an answer the client waited for.
type guardedConn struct {
	net.Conn
	g   *guard
	key net.Addr
	// peer is key as each call's log line shows it, formatted once and not
	// on every call.
	peer      string
	aborts    tokenBucket
	streams   atomic.Int32 // api.Api's streaming calls running on it
	closeOnce sync.Once
	cut       atomic.Bool // closed for its resets: logged once
}

func (c *guardedConn) Close() error {
	c.closeOnce.Do(func() { c.g.conns.CompareAndDelete(c.key, c) })
	return c.Conn.Close()
}

func (g *guard) conn(ctx context.Context) *guardedConn {
	p, ok := peer.FromContext(ctx)
	if !ok || p.Addr == nil {
		return nil
	}
	c, _ := g.conns.Load(p.Addr)
	gc, _ := c.(*guardedConn)
	return gc
}

// tap gives every call a server-side deadline from the moment its HEADERS
// arrive, whatever the client asked for: an interceptor would start it only
// once the request had arrived, and a request that never comes would leave
// the stream without one.
//
// It also charges each call to its connection's budget; settle refunds the
// calls that reach their handler and are not cancelled. What is left
// charged are streams reset before or while they run: a connection that
// spends its budget resets streams far faster than an honest client (a
// rapid reset, CVE-2023-44487). grpc-go bounds the handlers such a client
// keeps busy, but not the CPU it burns, so the connection is closed.
func (g *guard) tap(ctx context.Context, info *tap.Info) (context.Context, error) {
	now := time.Now()
	if c := g.conn(ctx); c != nil && !c.aborts.take(now) {
		g.cut(c)
		return nil, status.Error(codes.ResourceExhausted, "too many cancelled calls on this connection")
	}
	limit := g.cfg.MaxCallDuration
	if g.streaming[info.FullMethodName] {
		limit = g.cfg.MaxStreamDuration
	}
	// A client deadline (grpc-timeout) that comes first already ends the
	// stream with a timer of grpc-go's: a second context and timer would
	// never fire, and cost a tenth of a unary call's allocations. Clients
	// such as the frontend always set one.
	if deadline, ok := ctx.Deadline(); ok && !deadline.After(now.Add(limit)) {
		return ctx, nil
	}
	// No cancel to call: grpc-go cancels the stream's own context, this
	// one's parent, when the stream ends, which also stops this timer.
	ctx, cancel := context.WithDeadline(ctx, now.Add(limit))
	_ = cancel
	return ctx, nil
}

// settle refunds a call that reached its handler, unless its client reset
// it meanwhile: the stream's context ends only after the handler returns,
// so an ended context here is the client's doing. c is the call's
// connection (conn), nil when it is not known.
func (g *guard) settle(ctx context.Context, c *guardedConn) {
	if ctx.Err() != nil || c == nil {
		return
	}
	c.aborts.refund()
}

func (g *guard) cut(c *guardedConn) {
	if !c.cut.CompareAndSwap(false, true) {
		return
	}
	g.cfg.Logger.Info("closing a connection that resets streams faster than any honest client",
		"peer", c.key.String(), "resets_per_second", g.cfg.MaxResetsPerSecond, "burst", g.cfg.MaxResetBurst)
	_ = c.Close()
}

// learn finds the streaming methods among the services the server hosts.
func (g *guard) learn(services map[string]grpc.ServiceInfo) {
	g.streaming, g.apiStreams = map[string]bool{}, map[string]bool{}
	for name, info := range services {
		for _, m := range info.Methods {
			if m.IsClientStream || m.IsServerStream {
				g.streaming["/"+name+"/"+m.Name] = true
			}
		}
	}
	for _, st := range api.Api_ServiceDesc.Streams {
		g.apiStreams["/"+api.Api_ServiceDesc.ServiceName+"/"+st.StreamName] = true
	}
}

// budgeted says whether calls of method count against the stream budgets.
func (g *guard) budgeted(method string) bool { return g.apiStreams[method] }

// takeStream admits a streaming call of api.Api within the budgets of its
// connection and of the process, and returns its connection (nil when not
// known) for releaseStream; over either, it refuses the call.
func (g *guard) takeStream(ctx context.Context) (*guardedConn, error) {
	c := g.conn(ctx)
	if c != nil && c.streams.Add(1) > int32(g.cfg.MaxStreamingCallsPerConn) {
		c.streams.Add(-1)
		return nil, status.Errorf(codes.ResourceExhausted,
			"this connection already runs %d streaming calls, the limit; try again when one ends", g.cfg.MaxStreamingCallsPerConn)
	}
	if g.streams.Add(1) > int32(g.cfg.MaxStreamingCalls) {
		g.releaseStream(c)
		return nil, status.Errorf(codes.ResourceExhausted,
			"the server already runs %d streaming calls, the limit; try again when one ends", g.cfg.MaxStreamingCalls)
	}
	return c, nil
}

// releaseStream gives back what takeStream took.
func (g *guard) releaseStream(c *guardedConn) {
	g.streams.Add(-1)
	if c != nil {
		c.streams.Add(-1)
	}
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

// refund gives back a token that take spent.
func (b *tokenBucket) refund() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.tokens = min(b.burst, b.tokens+1)
}
