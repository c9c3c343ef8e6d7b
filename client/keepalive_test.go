package client_test

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// The defaults must respect the stricter of the two servers the client
// talks to: ours, and gRPC C core's (the post's Python server), which allows
// one ping every 5 min while calls run and none on an idle connection.
func TestDefaultKeepaliveRespectsServerPolicies(t *testing.T) {
	const cCoreMinPingInterval = 5 * time.Minute
	k := client.DefaultKeepalive
	if k.Time < backend.DefaultConfig.KeepaliveMinTime || k.Time < cCoreMinPingInterval {
		t.Errorf("keepalive time %v is under a server's minimum ping interval (ours %v, C core %v)",
			k.Time, backend.DefaultConfig.KeepaliveMinTime, cCoreMinPingInterval)
	}
	if k.PermitWithoutStream {
		t.Error("pings on idle connections earn GOAWAY too_many_pings from C core servers")
	}
	if k.Timeout <= 0 || k.Timeout >= k.Time {
		t.Errorf("keepalive timeout %v must be positive and under the ping interval", k.Timeout)
	}
}

// keepalivePing is the payload grpc-go puts in keepalive pings; its
// flow-control (BDP) pings carry another.
var keepalivePing [8]byte

// frameWatcher dials for a client and reports the HTTP/2 frames that
// matter to keepalive as they cross the connection.
type frameWatcher struct {
	dials     atomic.Int32
	pingsSent chan struct{} // keepalive pings from the client
	pingAcks  chan struct{} // the server's acks of them
	goAways   chan string   // GOAWAY debug data from the server
	wg        sync.WaitGroup
}

func newFrameWatcher(t *testing.T) *frameWatcher {
	w := &frameWatcher{pingsSent: make(chan struct{}, 100), pingAcks: make(chan struct{}, 100), goAways: make(chan string, 10)}
	t.Cleanup(w.wg.Wait)
	return w
}

func (w *frameWatcher) dial(ctx context.Context, addr string) (net.Conn, error) {
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	w.dials.Add(1)
	outR, outW := io.Pipe()
	inR, inW := io.Pipe()
	w.wg.Add(2)
	go w.parse(outR, true)
	go w.parse(inR, false)
	return &watchedConn{Conn: conn, out: outW, in: inW}, nil
}

// parse reads one direction's frames. It drains its pipe to the end, so
// that the connection never waits for it.
func (w *frameWatcher) parse(r *io.PipeReader, fromClient bool) {
	defer w.wg.Done()
	defer io.Copy(io.Discard, r)
	if fromClient {
		if _, err := io.ReadFull(r, make([]byte, len(http2.ClientPreface))); err != nil {
			return
		}
	}
	fr := http2.NewFramer(io.Discard, r)
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.PingFrame:
			if f.Data != keepalivePing {
				continue
			}
			switch {
			case fromClient && !f.IsAck():
				w.pingsSent <- struct{}{}
			case !fromClient && f.IsAck():
				w.pingAcks <- struct{}{}
			}
		case *http2.GoAwayFrame:
			if !fromClient {
				w.goAways <- string(f.DebugData())
			}
		}
	}
}

type watchedConn struct {
	net.Conn
	out, in *io.PipeWriter
}

func (c *watchedConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	_, _ = c.out.Write(p[:n])
	return n, err
}

func (c *watchedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	_, _ = c.in.Write(p[:n])
	return n, err
}

func (c *watchedConn) Close() error {
	c.out.Close()
	c.in.Close()
	return c.Conn.Close()
}

// openWatch starts a health watch, a call that stays open and silent after
// its first reply: the case where keepalive pings are sent.
func openWatch(t *testing.T, ctx context.Context, c *client.Client) healthpb.Health_WatchClient {
	t.Helper()
	watch, err := healthpb.NewHealthClient(c.Conn()).Watch(ctx, &healthpb.HealthCheckRequest{Service: "api.Api"})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := watch.Recv(); err != nil || s.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("watch = %v, %v; want SERVING", s.GetStatus(), err)
	}
	return watch
}

// grpc-go's client pings no more often than every 10 s, and a server lets
// the first ping after it sent data pass and GOAWAYs on the third strike
// after it: four pings show that the server accepted them all.
const (
	fastestClientPing = 10 * time.Second
	pingsToProve      = 4
	keepaliveBound    = 2 * time.Minute
)

// A client pinging at its interval keeps its connection, and its silent
// call, across several pings to a server whose minimum is shorter: the
// relation between client.DefaultKeepalive and our backend's 10 s, at the
// shortest interval grpc-go allows.
func TestKeepalivePingsAcceptedByBackend(t *testing.T) {
	t.Parallel()
	b := backendtest.Start(t, backend.Config{KeepaliveMinTime: fastestClientPing / 2})
	w := newFrameWatcher(t)
	c := testkit.NewClient(t, b.Addr, client.WithDialOptions(
		grpc.WithContextDialer(w.dial),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: fastestClientPing, Timeout: 5 * time.Second}),
	))
	ctx, cancel := context.WithTimeout(t.Context(), keepaliveBound)
	defer cancel()
	watchCtx, endWatch := context.WithCancel(ctx)
	watch := openWatch(t, watchCtx, c)

	for i := range pingsToProve {
		select {
		case <-w.pingAcks:
		case reason := <-w.goAways:
			t.Fatalf("GOAWAY %q after %d pings", reason, i)
		case <-ctx.Done():
			t.Fatalf("only %d keepalive pings acknowledged within %v", i, keepaliveBound)
		}
	}
	if msg, err := c.SayHello(ctx, "still here"); err != nil || msg != "Hello still here!" {
		t.Fatalf("SayHello after the pings = %q, %v", msg, err)
	}
	endWatch()
	if _, err := watch.Recv(); status.Code(err) != codes.Canceled {
		t.Fatalf("the watch ended with %v before it was cancelled", err)
	}
	if n := w.dials.Load(); n != 1 {
		t.Fatalf("the client dialled %d times; the connection was dropped", n)
	}
	select {
	case reason := <-w.goAways:
		t.Fatalf("GOAWAY %q", reason)
	default:
	}
}

// The control for the test above: the same client against a server that
// wants fewer pings gets the GOAWAY "too_many_pings" the watcher looks for.
func TestKeepalivePingsTooOftenGetGoAway(t *testing.T) {
	t.Parallel()
	b := backendtest.Start(t, backend.Config{KeepaliveMinTime: time.Hour})
	w := newFrameWatcher(t)
	c := testkit.NewClient(t, b.Addr, client.WithDialOptions(
		grpc.WithContextDialer(w.dial),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: fastestClientPing, Timeout: 5 * time.Second}),
	))
	ctx, cancel := context.WithTimeout(t.Context(), keepaliveBound)
	defer cancel()
	watch := openWatch(t, ctx, c)
	select {
	case reason := <-w.goAways:
		if reason != "too_many_pings" {
			t.Fatalf("GOAWAY %q, want too_many_pings", reason)
		}
	case <-ctx.Done():
		t.Fatal("no GOAWAY for pings more often than the server allows")
	}
	if _, err := watch.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("watch after GOAWAY = %v, want Unavailable", err)
	}
}

// freezingProxy forwards TCP between a client and a server until frozen;
// then it drops everything, as a peer that vanished without closing would.
type freezingProxy struct {
	lis    net.Listener
	frozen atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
	wg     sync.WaitGroup
}

func startFreezingProxy(t *testing.T, target string) *freezingProxy {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &freezingProxy{lis: lis}
	p.wg.Add(1)
	go p.accept(target)
	t.Cleanup(func() {
		lis.Close()
		p.mu.Lock()
		for _, c := range p.conns {
			c.Close()
		}
		p.mu.Unlock()
		p.wg.Wait()
	})
	return p
}

func (p *freezingProxy) accept(target string) {
	defer p.wg.Done()
	for {
		in, err := p.lis.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", target)
		if err != nil {
			in.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, in, out)
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pipe(in, out)
		go p.pipe(out, in)
	}
}

func (p *freezingProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && !p.frozen.Load() {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// With nothing arriving, a client learns its server is gone from an
// unanswered ping, within Time plus Timeout, instead of waiting out the
// call's deadline or the kernel's retransmissions.
func TestKeepaliveDetectsDeadPeer(t *testing.T) {
	t.Parallel()
	b := backendtest.Start(t, backend.Config{})
	proxy := startFreezingProxy(t, b.Addr)
	c := testkit.NewClient(t, proxy.lis.Addr().String(), client.WithDialOptions(
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: fastestClientPing, Timeout: time.Second}),
	))
	ctx, cancel := context.WithTimeout(t.Context(), keepaliveBound)
	defer cancel()
	watch := openWatch(t, ctx, c)
	proxy.frozen.Store(true)
	start := time.Now()
	_, err := watch.Recv()
	if status.Code(err) != codes.Unavailable || errors.Is(ctx.Err(), context.DeadlineExceeded) {
		t.Fatalf("watch through a dead peer ended with %v, want Unavailable from keepalive", err)
	}
	t.Logf("dead peer detected after %v: %v", time.Since(start).Round(time.Millisecond), err)
}
