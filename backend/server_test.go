package backend_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
)

// startServer runs a full Server on a loopback port and connects to it.
func startServer(t *testing.T, cfg backend.Config) (*grpc.ClientConn, *backendtest.Backend) {
	t.Helper()
	b := backendtest.Start(t, cfg)
	conn, err := grpc.NewClient(b.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, b
}

func TestServerHealth(t *testing.T) {
	conn, _ := startServer(t, backend.Config{})
	h := healthpb.NewHealthClient(conn)
	for _, service := range []string{"", "api.Api"} {
		reply, err := h.Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || reply.GetStatus() != healthpb.HealthCheckResponse_SERVING {
			t.Fatalf("health of %q = %v, %v; want SERVING", service, reply.GetStatus(), err)
		}
	}
}

// grpcurl and ghz discover the API through reflection, without the proto.
func TestServerReflection(t *testing.T) {
	conn, _ := startServer(t, backend.Config{})
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer stream.CloseSend()
	if err := stream.Send(&reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	reply, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, s := range reply.GetListServicesResponse().GetService() {
		listed[s.GetName()] = true
	}
	for _, want := range []string{"api.Api", "grpc.health.v1.Health"} {
		if !listed[want] {
			t.Errorf("reflection lists %v, missing %s", listed, want)
		}
	}
}

func TestServerLimitsAreConfigurable(t *testing.T) {
	conn, _ := startServer(t, backend.Config{Limits: backend.Limits{MaxItems: 5}})
	c := api.NewApiClient(conn)
	if _, err := c.GetAll(t.Context(), &api.ApiRequest{Length: 5}); err != nil {
		t.Fatal(err)
	}
	_, err := c.GetAll(t.Context(), &api.ApiRequest{Length: 6})
	wantCode(t, err, codes.InvalidArgument, "between 0 and 5")
	// Fields left at zero keep their defaults.
	_, err = c.SayHello(t.Context(), &api.HelloRequest{Name: string(make([]byte, 1025))})
	wantCode(t, err, codes.InvalidArgument, "1024")
}

// The default getAll limit must produce a reply under gRPC's 4 MiB default
// message size, or the largest allowed call would fail on the client.
func TestServerDefaultMaxItemsFitsOneMessage(t *testing.T) {
	conn, _ := startServer(t, backend.Config{})
	reply, err := api.NewApiClient(conn).GetAll(t.Context(), &api.ApiRequest{Length: backend.DefaultLimits.MaxItems})
	if err != nil {
		t.Fatal(err)
	}
	wantItems(t, reply.GetItems(), int(backend.DefaultLimits.MaxItems))
}

func TestServerGracefulShutdown(t *testing.T) {
	conn, srv := startServer(t, backend.Config{})
	h := healthpb.NewHealthClient(conn)
	// A watch is a call in flight too: it must end for GracefulStop to return.
	watchCtx, endWatch := context.WithCancel(t.Context())
	defer endWatch()
	watch, err := h.Watch(watchCtx, &healthpb.HealthCheckRequest{Service: "api.Api"})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := watch.Recv(); err != nil || s.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health watch = %v, %v; want SERVING", s.GetStatus(), err)
	}

	const n = 50_000
	stream, err := api.NewApiClient(conn).GetStream(t.Context(), &api.ApiRequest{Length: n})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		srv.Stop(time.Minute)
	}()

	if s, err := watch.Recv(); err != nil || s.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health watch during shutdown = %v, %v; want NOT_SERVING", s.GetStatus(), err)
	}
	endWatch()
	rest, err := collect(stream, nil)
	if err != nil {
		t.Fatalf("stream in flight failed during graceful shutdown: %v", err)
	}
	if len(rest) != n-1 {
		t.Fatalf("stream in flight got %d more items, want %d", len(rest), n-1)
	}
	<-stopped
}

func TestServerShutdownCancelsCallsAfterGrace(t *testing.T) {
	conn, srv := startServer(t, backend.Config{})
	stream, err := api.NewApiClient(conn).GetStream(t.Context(), &api.ApiRequest{Length: backend.DefaultLimits.MaxStreamItems})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	// The client stops reading, so the stream cannot finish in the grace period.
	srv.Stop(100 * time.Millisecond)
	if _, err := collect(stream, nil); err == nil {
		t.Fatal("a 10M-item stream completed although the server stopped")
	}
}
