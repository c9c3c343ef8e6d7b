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
