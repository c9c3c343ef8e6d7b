package backend_test

import (
	"context"
	"fmt"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/client"
)

// The benchmarks call over real loopback TCP through client.New, the way the
// frontend and the CLI call in production, so that they include HTTP/2
// framing, flow control and the server's interceptors. Each one also runs
// against a bare grpc.NewServer() hosting the same Service, so that the cost
// of Server's options and interceptors shows as a ratio within one run.

// benchServers are the two servers each benchmark compares.
var benchServers = []struct {
	name  string
	start func(net.Listener) (serve func() error, stop func())
}{
	{"server=grpcplay", func(lis net.Listener) (func() error, func()) {
		srv := backend.New(backend.Config{})
		return func() error { return srv.Serve(lis) }, func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			srv.Shutdown(ctx)
		}
	}},
	{"server=bare", func(lis net.Listener) (func() error, func()) {
		srv := grpc.NewServer()
		api.RegisterApiServer(srv, backend.NewService(backend.DefaultLimits))
		return func() error { return srv.Serve(lis) }, srv.GracefulStop
	}},
}

// startBenchClient serves with start on a loopback port and returns a client
// connected to it. Everything stops when b ends.
func startBenchClient(b *testing.B, start func(net.Listener) (func() error, func())) *client.Client {
	b.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	serve, stop := start(lis)
	served := make(chan error, 1)
	go func() { served <- serve() }()
	c, err := client.New(lis.Addr().String())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		c.Close()
		stop()
		if err := <-served; err != nil {
			b.Errorf("Serve: %v", err)
		}
	})
	// Connect before any timer starts, so that no benchmark pays the dial.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := c.SayHello(ctx, "warm-up"); err != nil {
		b.Fatal(err)
	}
	return c
}

// runUnary runs call b.N times, either from one goroutine or spread over
// GOMAXPROCS goroutines sharing the connection (the frontend's pattern).
func runUnary(b *testing.B, parallel bool, call func(context.Context) error) {
	b.ReportAllocs()
	ctx := context.Background()
	if !parallel {
		for b.Loop() {
			if err := call(ctx); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := call(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

var modes = []struct {
	name     string
	parallel bool
}{{"mode=sequential", false}, {"mode=parallel", true}}

var benchLengths = []int32{10, 1000, 100_000}

func BenchmarkSayHello(b *testing.B) {
	for _, s := range benchServers {
		b.Run(s.name, func(b *testing.B) {
			c := startBenchClient(b, s.start)
			for _, m := range modes {
				b.Run(m.name, func(b *testing.B) {
					runUnary(b, m.parallel, func(ctx context.Context) error {
						msg, err := c.SayHello(ctx, "Gonzalo")
						if err == nil && msg != "Hello Gonzalo!" {
							err = fmt.Errorf("SayHello = %q", msg)
						}
						return err
					})
				})
			}
		})
	}
}

func BenchmarkGetAll(b *testing.B) {
	for _, s := range benchServers {
		b.Run(s.name, func(b *testing.B) {
			c := startBenchClient(b, s.start)
			for _, n := range benchLengths {
				for _, m := range modes {
					b.Run(fmt.Sprintf("length=%d/%s", n, m.name), func(b *testing.B) {
						runUnary(b, m.parallel, func(ctx context.Context) error {
							items, err := c.GetAll(ctx, n)
							if err == nil && int32(len(items)) != n {
								err = fmt.Errorf("GetAll(%d) returned %d items", n, len(items))
							}
							return err
						})
						reportItemsPerSecond(b, n)
					})
				}
			}
		})
	}
}

// BenchmarkGetStream measures whole streams, one at a time: the frontend's
// live page reads one stream per visitor.
func BenchmarkGetStream(b *testing.B) {
	for _, s := range benchServers {
		b.Run(s.name, func(b *testing.B) {
			c := startBenchClient(b, s.start)
			for _, n := range benchLengths {
				b.Run(fmt.Sprintf("length=%d", n), func(b *testing.B) {
					b.ReportAllocs()
					ctx := context.Background()
					for b.Loop() {
						var got int32
						for _, err := range c.GetStream(ctx, n) {
							if err != nil {
								b.Fatal(err)
							}
							got++
						}
						if got != n {
							b.Fatalf("GetStream(%d) yielded %d items", n, got)
						}
					}
					reportItemsPerSecond(b, n)
				})
			}
		})
	}
}

func reportItemsPerSecond(b *testing.B, perOp int32) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(b.N)*float64(perOp)/s, "items/s")
	}
}
