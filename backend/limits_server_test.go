package backend_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/internal/testkit"
	"github.com/grpcplay/grpcplay/internal/vtcodec"
)

func TestServerRefusesOversizedRequest(t *testing.T) {
	conn, _ := startServer(t, backend.Config{})
	_, err := api.NewApiClient(conn).SayHello(t.Context(), &api.HelloRequest{Name: strings.Repeat("x", 65<<10)})
	wantCode(t, err, codes.ResourceExhausted, "larger than max")
	// The server keeps serving on the same connection.
	if _, err := api.NewApiClient(conn).SayHello(t.Context(), &api.HelloRequest{Name: "x"}); err != nil {
		t.Fatal(err)
	}
}

// A server configured past MaxItemsCeiling (which only the CLI's validation
// prevents) still never sends a reply the client would refuse: it fails the
// call with ResourceExhausted instead.
func TestServerRefusesToSendOverLimit(t *testing.T) {
	// About 19 bytes an item: 250,000 items pass 4 MiB.
	const tooMany = 250_000
	b := backendtest.Start(t, backend.Config{Limits: backend.Limits{MaxItems: tooMany}})
	conn, err := grpc.NewClient(b.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(4*api.MaxReplyBytes)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_, err = api.NewApiClient(conn).GetAll(t.Context(), &api.ApiRequest{Length: tooMany})
	wantCode(t, err, codes.ResourceExhausted, "larger than max")
}

func TestServerBoundsConcurrentStreams(t *testing.T) {
	conn, _ := startServer(t, backend.Config{MaxConcurrentStreams: 2})
	h := healthpb.NewHealthClient(conn)
	var ends []context.CancelFunc
	for range 2 {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		ends = append(ends, cancel)
		watch, err := h.Watch(ctx, &healthpb.HealthCheckRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := watch.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	// With both streams open a third call waits for one to end.
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	_, err := h.Check(ctx, &healthpb.HealthCheckRequest{})
	wantCode(t, err, codes.DeadlineExceeded, "")
	ends[0]()
	if _, err := h.Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("call after a stream ended: %v", err)
	}
}

// A client that pings more often than the enforcement policy allows is sent
// GOAWAY "too_many_pings" and disconnected, rather than served forever.
func TestServerEnforcesKeepalivePolicy(t *testing.T) {
	b := backendtest.Start(t, backend.Config{})
	conn, err := net.Dial("tcp", b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write([]byte(http2.ClientPreface)); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(conn, conn)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		if err := fr.WritePing(false, [8]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("connection ended without GOAWAY: %v", err)
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			if g.ErrCode != http2.ErrCodeEnhanceYourCalm || string(g.DebugData()) != "too_many_pings" {
				t.Fatalf("GOAWAY %v %q, want ENHANCE_YOUR_CALM too_many_pings", g.ErrCode, g.DebugData())
			}
			return
		}
	}
}

// MaxConnectionAge sends clients to a new connection, and its grace bounds
// how long a call may hold the old one.
func TestServerMaxConnectionAge(t *testing.T) {
	b := backendtest.Start(t, backend.Config{MaxConnectionAge: 200 * time.Millisecond, MaxConnectionAgeGrace: 200 * time.Millisecond})
	conn, dials := backendtest.DialCounting(t, b.Addr)
	h := healthpb.NewHealthClient(conn)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	watch, err := h.Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := watch.Recv(); err != nil {
		t.Fatal(err)
	}
	// The watch never ends by itself: the grace period ends it.
	_, err = watch.Recv()
	wantCode(t, err, codes.Unavailable, "")
	if _, err := h.Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("call after the connection aged out: %v", err)
	}
	if n := dials.Load(); n < 2 {
		t.Fatalf("%d dials; the client was never sent to a new connection", n)
	}
}

// A connection's age must never cut a stream short of its own deadline:
// the grace after the age covers the longest stream the server allows.
func TestAgeGraceCoversTheStreamDeadline(t *testing.T) {
	d := backend.DefaultConfig
	if d.MaxConnectionAgeGrace < d.MaxStreamDuration {
		t.Fatalf("MaxConnectionAgeGrace %v is shorter than MaxStreamDuration %v", d.MaxConnectionAgeGrace, d.MaxStreamDuration)
	}
}

// openStream starts getStream(10,000,000) on conn and reads its first item,
// so that the call is running on the server when it returns.
func openStream(t *testing.T, conn *grpc.ClientConn) error {
	t.Helper()
	stream, err := api.NewApiClient(conn).GetStream(t.Context(), &api.ApiRequest{Length: 10_000_000})
	if err != nil {
		return err
	}
	_, err = stream.Recv()
	return err
}

// Every streaming method of api.Api counts against both budgets: one
// connection runs at most MaxStreamingCallsPerConn, the process at most
// MaxStreamingCalls, and a call over either is refused with
// ResourceExhausted saying which; a slot frees when a stream ends.
func TestServerBudgetsStreamingCalls(t *testing.T) {
	if n := len(api.Api_ServiceDesc.Streams); n != 1 {
		t.Fatalf("api.Api has %d streaming methods; this test opens getStream only", n)
	}
	conn, b := startServer(t, backend.Config{MaxStreamingCallsPerConn: 2, MaxStreamingCalls: 3})
	for range 2 {
		if err := openStream(t, conn); err != nil {
			t.Fatal(err)
		}
	}
	wantCode(t, openStream(t, conn), codes.ResourceExhausted, "this connection already runs 2 streaming calls")
	// Unary calls are not counted.
	if _, err := api.NewApiClient(conn).SayHello(t.Context(), &api.HelloRequest{Name: "x"}); err != nil {
		t.Fatal(err)
	}

	other, err := grpc.NewClient(b.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := api.NewApiClient(other).GetStream(ctx, &api.ApiRequest{Length: 10_000_000})
	if err == nil {
		_, err = stream.Recv()
	}
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, openStream(t, other), codes.ResourceExhausted, "the server already runs 3 streaming calls")

	// The slot frees once the server has seen the cancel.
	cancel()
	testkit.Eventually(t, 10*time.Second, func() error {
		err := openStream(t, other)
		return testkit.Failf(err == nil, "after a stream ended: %v", err)
	})
}

// The server's codec does not check UTF-8, as protobuf's does, so the
// Service refuses a name that is not, with a message. vtcodec on the client
// sends it as it is, as any client could on the wire.
func TestServerRefusesNonUTF8Name(t *testing.T) {
	b := backendtest.Start(t, backend.Config{})
	conn, err := grpc.NewClient(b.Addr, grpc.WithTransportCredentials(insecure.NewCredentials()),
		grpc.WithDefaultCallOptions(grpc.ForceCodecV2(vtcodec.Codec{})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = api.NewApiClient(conn).SayHello(t.Context(), &api.HelloRequest{Name: "caf\xe9"})
	wantCode(t, err, codes.InvalidArgument, "name is not valid UTF-8")
}
