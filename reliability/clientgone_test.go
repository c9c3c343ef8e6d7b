package reliability_test

import (
	"context"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

const (
	hugeStream = 10_000_000
	readFirst  = 10
)

// readThenCancel reads a few items of a huge stream, then cancels its
// context, as a client does that goes away. It returns when the client has
// seen the stream end, which must be with Canceled.
func readThenCancel(t *testing.T, c api.ApiClient) time.Time {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	stream, err := c.GetStream(ctx, &api.ApiRequest{Length: hugeStream})
	if err != nil {
		t.Fatal(err)
	}
	for range readFirst {
		if _, err := stream.Recv(); err != nil {
			t.Fatal(err)
		}
	}
	cancel()
	canceled := time.Now()
	for {
		_, err := stream.Recv()
		if err == nil {
			continue // items already on their way when the client cancelled
		}
		if status.Code(err) != codes.Canceled {
			t.Fatalf("stream after cancel: %v, want Canceled", err)
		}
		return canceled
	}
}

// TestClientGoneStopsTheStream shows that the server stops producing a
// 10,000,000-item stream as soon as its client cancels, and that nothing is
// left running afterwards.
func TestClientGoneStopsTheStream(t *testing.T) {
	// The production server, on a listener that counts the bytes it writes.
	// Its per-call log line says when the handler returned, and with
	// what code. Once it has returned, nothing more can be produced.
	t.Run("production server", productionServerStopsWriting)

	// The service itself, wrapped to count each item it sends: the count
	// stops where the handler returns, far below the stream's length.
	t.Run("items sent", serviceStopsSending)
}

func serviceStopsSending(t *testing.T) {
	svc := &countingService{Service: backend.NewService(backend.DefaultLimits), ended: make(chan error, 1)}
	srv := grpc.NewServer()
	api.RegisterApiServer(srv, svc)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	conn := dial(t, lis.Addr().String())

	canceled := readThenCancel(t, api.NewApiClient(conn))
	atCancel := svc.sent.Load()
	var handlerErr error
	select {
	case handlerErr = <-svc.ended:
	case <-time.After(10 * time.Second):
		t.Fatalf("getStream still runs 10s after its client cancelled; %d items sent", svc.sent.Load())
	}
	stoppedAfter := time.Since(canceled)
	atEnd := svc.sent.Load()
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	<-served
	t.Logf("client read %d items and cancelled; the server had sent %d then, and %d when its handler returned %v later with %v",
		readFirst, atCancel, atEnd, stoppedAfter.Round(time.Millisecond), handlerErr)
	if status.Code(handlerErr) != codes.Canceled {
		t.Errorf("handler returned %v, want Canceled", handlerErr)
	}
	// Between the cancel and the server seeing it, items still fill the
	// stream's flow-control window: tens of kilobytes, a few thousand
	// items. One percent of the stream is far beyond that.
	if atEnd > hugeStream/100 {
		t.Errorf("server sent %d items of a stream cancelled after %d", atEnd, readFirst)
	}
	if got := svc.sent.Load(); got != atEnd {
		t.Errorf("server sent %d items after its handler returned", got-atEnd)
	}
	goleak.VerifyNone(t)
}

func productionServerStopsWriting(t *testing.T) {
	var written atomic.Int64
	logs := &telemetrytest.LogBuffer{}
	srv := backend.New(backend.Config{
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(countingListener{lis, &written}) }()
	conn := dial(t, lis.Addr().String())

	canceled := readThenCancel(t, api.NewApiClient(conn))
	atCancel := written.Load()
	const ended = `method=/api.Api/getStream code=Canceled`
	testkit.Eventually(t, 10*time.Second, func() error {
		return testkit.Failf(strings.Contains(logs.String(), ended), "the server's getStream handler has not returned Canceled")
	})
	stoppedAfter := time.Since(canceled)
	atEnd := written.Load()
	// The server still answers on the same connection.
	if _, err := api.NewApiClient(conn).SayHello(t.Context(), &api.HelloRequest{Name: "still here"}); err != nil {
		t.Fatalf("sayHello after the cancelled stream: %v", err)
	}
	if err := conn.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	srv.Shutdown(ctx)
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	final := written.Load()
	// An item is at least 20 bytes on the wire (5 of gRPC framing, 15 of
	// protobuf for ids of 5 digits and more), so the whole stream would be
	// over 190 MiB.
	t.Logf("server wrote %d bytes when the client cancelled, %d when its handler returned %v later, %d in all (sayHello and shutdown included); the whole stream is over 190 MiB",
		atCancel, atEnd, stoppedAfter.Round(time.Millisecond), final)
	if atEnd > 4<<20 {
		t.Errorf("server wrote %d bytes of a stream its client cancelled after %d items", atEnd, readFirst)
	}
	// What the handler handed to the transport before it saw the cancel
	// may still go out: grpc-go lets a stream queue up to its write
	// quota (64 KiB of messages, overshot by the message that crosses
	// it) ahead of the connection's writer, and the sayHello reply, the
	// shutdown's frames and HTTP/2's framing come on top. Twice the quota
	// bounds all of that; a stream still being produced (190 MiB) writes
	// far more.
	if final-atEnd > 2*64<<10 {
		t.Errorf("server wrote %d more bytes after its handler returned", final-atEnd)
	}
	goleak.VerifyNone(t)
}

func dial(t *testing.T, addr string) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// countingService is the production Service, counting each item it sends
// and reporting how its stream handler ended.
type countingService struct {
	*backend.Service
	sent  atomic.Int64
	ended chan error
}

func (s *countingService) GetStream(req *api.ApiRequest, stream grpc.ServerStreamingServer[api.Item]) error {
	err := s.Service.GetStream(req, countingStream{stream, &s.sent})
	s.ended <- err
	return err
}

type countingStream struct {
	grpc.ServerStreamingServer[api.Item]
	sent *atomic.Int64
}

func (s countingStream) Send(item *api.Item) error {
	err := s.ServerStreamingServer.Send(item)
	if err == nil {
		s.sent.Add(1)
	}
	return err
}

// countingListener counts the bytes the server writes to its clients.
type countingListener struct {
	net.Listener
	written *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countingConn{c, l.written}, nil
}

type countingConn struct {
	net.Conn
	written *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	n, err := c.Conn.Write(p)
	c.written.Add(int64(n))
	return n, err
}
