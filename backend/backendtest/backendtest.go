// Package backendtest runs the real backend on a loopback port for the tests
// of the packages that call it, so that they all exercise the production
// server, with its options and interceptors, in the same way.
package backendtest

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
)

// Backend is a backend.Server serving on a loopback port.
type Backend struct {
	// Addr is the host:port the backend listens on.
	Addr string

	tb     testing.TB
	server *backend.Server
	served chan error
	once   sync.Once
}

// Start serves a backend on a free loopback port until the test ends.
func Start(tb testing.TB, cfg backend.Config) *Backend {
	tb.Helper()
	return StartAt(tb, "127.0.0.1:0", cfg)
}

// StartAt serves a backend on addr, such as the address of one that was
// stopped, to bring it back where its clients expect it.
func StartAt(tb testing.TB, addr string, cfg backend.Config) *Backend {
	tb.Helper()
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		tb.Fatalf("listen for backend: %v", err)
	}
	b := &Backend{Addr: lis.Addr().String(), tb: tb, server: backend.New(cfg), served: make(chan error, 1)}
	go func() { b.served <- b.server.Serve(lis) }()
	tb.Cleanup(func() { b.Stop(0) })
	return b
}

// Stop shuts the backend down, letting calls in flight finish within grace,
// and waits until it has stopped. Only the first call does anything.
func (b *Backend) Stop(grace time.Duration) {
	b.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), grace)
		defer cancel()
		b.server.Shutdown(ctx)
		if err := <-b.served; err != nil {
			b.tb.Errorf("backend Serve: %v", err)
		}
	})
}

// DialCounting is a plaintext client connection to addr that counts the
// connections it opens, so that a test sees whether the server sent the
// client to a new one.
func DialCounting(tb testing.TB, addr string) (*grpc.ClientConn, *atomic.Int32) {
	tb.Helper()
	dials := new(atomic.Int32)
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			dials.Add(1)
			return (&net.Dialer{}).DialContext(ctx, "tcp", addr)
		}))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { _ = conn.Close() })
	return conn, dials
}

// StartRendezvous serves api.Api (backend.Service at backend.DefaultLimits)
// on a free loopback port until the test ends, answering no call until n
// calls are in flight at once. A client that makes its calls one after
// another never gets n of them there: its first call fails when its
// deadline passes.
func StartRendezvous(tb testing.TB, n int) string {
	tb.Helper()
	var arrived atomic.Int32
	all := make(chan struct{})
	meet := func(ctx context.Context) error {
		if arrived.Add(1) == int32(n) {
			close(all)
		}
		select {
		case <-all:
			return nil
		case <-ctx.Done():
			return status.FromContextError(ctx.Err()).Err()
		}
	}
	srv := grpc.NewServer(
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
			if err := meet(ctx); err != nil {
				return nil, err
			}
			return handler(ctx, req)
		}),
		grpc.StreamInterceptor(func(srv any, ss grpc.ServerStream, _ *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			if err := meet(ss.Context()); err != nil {
				return err
			}
			return handler(srv, ss)
		}))
	api.RegisterApiServer(srv, backend.NewService(backend.DefaultLimits))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("listen for the rendezvous server: %v", err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	tb.Cleanup(func() { srv.Stop(); <-served })
	return lis.Addr().String()
}
