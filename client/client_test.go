package client_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve runs srv on a loopback port until the test ends.
func serve(t *testing.T, srv *grpc.Server) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String()
}

// Each RPC has a test of its own here, TestClient<Name>: repocheck's
// TestEveryRPCIsServedEndToEnd asks for one.

func TestClientSayHello(t *testing.T) {
	c := testkit.NewClient(t, backendtest.Start(t, backend.Config{}).Addr)
	msg, err := c.SayHello(t.Context(), "Gonzalo")
	if err != nil || msg != "Hello Gonzalo!" {
		t.Fatalf("SayHello = %q, %v", msg, err)
	}
}

func TestClientGetAll(t *testing.T) {
	c := testkit.NewClient(t, backendtest.Start(t, backend.Config{}).Addr)
	items, err := c.GetAll(t.Context(), 10)
	if err != nil {
		t.Fatal(err)
	}
	checkItems(t, items, 10)
}

func TestClientGetStream(t *testing.T) {
	c := testkit.NewClient(t, backendtest.Start(t, backend.Config{}).Addr)
	var streamed []*client.Item
	for it, err := range c.GetStream(t.Context(), 5) {
		if err != nil {
			t.Fatal(err)
		}
		streamed = append(streamed, it)
	}
	checkItems(t, streamed, 5)
}

func checkItems(t *testing.T, items []*client.Item, n int) {
	t.Helper()
	if len(items) != n {
		t.Fatalf("got %d items, want %d", len(items), n)
	}
	for i, it := range items {
		if it.GetId() != int32(i+1) || it.GetName() != fmt.Sprintf("name %d", i+1) {
			t.Fatalf("item %d = %v", i, it)
		}
	}
}

func TestClientErrorsKeepTheirCode(t *testing.T) {
	c := testkit.NewClient(t, backendtest.Start(t, backend.Config{}).Addr)
	_, err := c.GetAll(t.Context(), -1)
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("GetAll(-1) error = %v, want InvalidArgument", err)
	}
	var last error
	for _, err := range c.GetStream(t.Context(), -1) {
		last = err
	}
	if status.Code(last) != codes.InvalidArgument {
		t.Fatalf("GetStream(-1) error = %v, want InvalidArgument", last)
	}
}

// One Client serves many goroutines over its one connection.
func TestClientIsSafeForConcurrentUse(t *testing.T) {
	c := testkit.NewClient(t, backendtest.Start(t, backend.Config{}).Addr)
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			name := fmt.Sprint("caller ", i)
			msg, err := c.SayHello(t.Context(), name)
			if err == nil && msg != "Hello "+name+"!" {
				err = fmt.Errorf("SayHello(%q) = %q", name, msg)
			}
			if err == nil {
				var items []*client.Item
				items, err = c.GetAll(t.Context(), int32(i))
				if err == nil && len(items) != i {
					err = fmt.Errorf("GetAll(%d) gave %d items", i, len(items))
				}
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// recordingServer captures what the server sees of each call.
type recordingServer struct {
	api.UnimplementedApiServer
	deadlines chan time.Duration
	streamEnd chan error
}

func (s *recordingServer) SayHello(ctx context.Context, _ *api.HelloRequest) (*api.Hello, error) {
	d, ok := ctx.Deadline()
	if !ok {
		s.deadlines <- 0
	} else {
		s.deadlines <- time.Until(d)
	}
	return &api.Hello{}, nil
}

func (s *recordingServer) GetStream(req *api.ApiRequest, stream grpc.ServerStreamingServer[api.Item]) error {
	for i := int32(1); ; i++ {
		if err := stream.Send(backend.NewItem(i)); err != nil {
			s.streamEnd <- err
			return err
		}
	}
}

func TestClientAddsDefaultDeadline(t *testing.T) {
	rec := &recordingServer{deadlines: make(chan time.Duration, 2)}
	srv := grpc.NewServer()
	api.RegisterApiServer(srv, rec)
	c := testkit.NewClient(t, serve(t, srv), client.WithTimeout(7*time.Second))

	if _, err := c.SayHello(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	if d := <-rec.deadlines; d <= 0 || d > 7*time.Second {
		t.Fatalf("call without a deadline reached the server with %v left, want (0, 7s]", d)
	}

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if _, err := c.SayHello(ctx, "x"); err != nil {
		t.Fatal(err)
	}
	if d := <-rec.deadlines; d <= 7*time.Second {
		t.Fatalf("caller's own 1m deadline was replaced: %v left", d)
	}
}

func TestClientStreamReleasedWhenLoopBreaks(t *testing.T) {
	rec := &recordingServer{streamEnd: make(chan error, 1)}
	srv := grpc.NewServer()
	api.RegisterApiServer(srv, rec)
	c := testkit.NewClient(t, serve(t, srv))

	n := 0
	for _, err := range c.GetStream(t.Context(), 0) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	select {
	case err := <-rec.streamEnd:
		if status.Code(err) != codes.Canceled {
			t.Fatalf("server's endless stream ended with %v, want Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server kept streaming after the loop broke")
	}
}

func TestClientReady(t *testing.T) {
	t.Run("serving backend", func(t *testing.T) {
		c := testkit.NewClient(t, backendtest.Start(t, backend.Config{}).Addr)
		if err := c.Ready(t.Context()); err != nil {
			t.Fatalf("Ready = %v against a serving backend", err)
		}
	})
	t.Run("server without health service", func(t *testing.T) {
		srv := grpc.NewServer()
		api.RegisterApiServer(srv, &recordingServer{})
		if err := testkit.NewClient(t, serve(t, srv)).Ready(t.Context()); err != nil {
			t.Fatalf("Ready = %v; a server that answers Unimplemented was reached", err)
		}
	})
	t.Run("not serving", func(t *testing.T) {
		srv := grpc.NewServer()
		hs := &fixedHealth{status: healthpb.HealthCheckResponse_NOT_SERVING}
		healthpb.RegisterHealthServer(srv, hs)
		err := testkit.NewClient(t, serve(t, srv)).Ready(t.Context())
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("Ready = %v, want Unavailable", err)
		}
	})
	t.Run("unreachable", func(t *testing.T) {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := lis.Addr().String()
		lis.Close()
		err = testkit.NewClient(t, addr).Ready(t.Context())
		if status.Code(err) != codes.Unavailable {
			t.Fatalf("Ready = %v, want Unavailable", err)
		}
	})
}

type fixedHealth struct {
	healthpb.UnimplementedHealthServer
	status healthpb.HealthCheckResponse_ServingStatus
}

func (h *fixedHealth) Check(context.Context, *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	return &healthpb.HealthCheckResponse{Status: h.status}, nil
}

// streamDeadlineServer reports the deadline each stream arrives with.
type streamDeadlineServer struct {
	api.UnimplementedApiServer
	deadlines chan time.Duration
}

func (s *streamDeadlineServer) GetStream(_ *api.ApiRequest, stream grpc.ServerStreamingServer[api.Item]) error {
	d, ok := stream.Context().Deadline()
	if !ok {
		s.deadlines <- 0
		return nil
	}
	s.deadlines <- time.Until(d)
	return nil
}

func TestClientAddsDefaultStreamDeadline(t *testing.T) {
	rec := &streamDeadlineServer{deadlines: make(chan time.Duration, 1)}
	srv := grpc.NewServer()
	api.RegisterApiServer(srv, rec)
	c := testkit.NewClient(t, serve(t, srv), client.WithTimeout(time.Second), client.WithStreamTimeout(3*time.Minute))
	for _, err := range c.GetStream(t.Context(), 1) {
		if err != nil {
			t.Fatal(err)
		}
	}
	// The stream gets its own, longer deadline, not the unary one.
	if d := <-rec.deadlines; d <= time.Minute || d > 3*time.Minute {
		t.Fatalf("stream without a deadline reached the server with %v left, want (1m, 3m]", d)
	}
}

// Calls made at once on goroutines share the connection (the server answers
// neither until both have arrived) and each passes the unary interceptors.
func TestConcurrentCallsShareTheConnectionAndItsInterceptors(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	record := func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
		mu.Lock()
		seen = append(seen, method)
		mu.Unlock()
		return invoker(ctx, method, req, reply, cc, opts...)
	}
	c := testkit.NewClient(t, backendtest.StartRendezvous(t, 2), client.WithTimeout(5*time.Second),
		client.WithDialOptions(grpc.WithUnaryInterceptor(record)))
	var wg sync.WaitGroup
	var msg string
	var items []*client.Item
	var helloErr, allErr error
	wg.Go(func() { msg, helloErr = c.SayHello(t.Context(), "Gonzalo") })
	wg.Go(func() { items, allErr = c.GetAll(t.Context(), 3) })
	wg.Wait()
	if helloErr != nil || allErr != nil || msg != "Hello Gonzalo!" {
		t.Fatalf("SayHello = %q, %v; GetAll: %v", msg, helloErr, allErr)
	}
	checkItems(t, items, 3)
	slices.Sort(seen)
	if want := []string{api.Api_GetAll_FullMethodName, api.Api_SayHello_FullMethodName}; !slices.Equal(seen, want) {
		t.Errorf("unary interceptor saw %v, want %v", seen, want)
	}
}
