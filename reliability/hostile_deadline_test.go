package reliability_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
)

// TestCallWithoutItsRequestEnds opens calls whose request never comes, and
// without grpc-timeout: the server's own deadlines, set as their HEADERS
// arrive, end them. The production server in this process, with short
// deadlines in place of the defaults (30s unary, 5m streams).
func TestCallWithoutItsRequestEnds(t *testing.T) {
	b := backendtest.Start(t, backend.Config{MaxCallDuration: 200 * time.Millisecond, MaxStreamDuration: 400 * time.Millisecond})
	rc := dialRaw(t, b.Addr)
	hello := rc.open(grpcHeaders(api.Api_SayHello_FullMethodName), false)
	stream := rc.open(grpcHeaders(api.Api_GetStream_FullMethodName), false)
	start := time.Now()
	ended := map[uint32]time.Duration{}
	for len(ended) < 2 {
		select {
		case tr := <-rc.trailers:
			if tr.status != "4" { // DeadlineExceeded
				t.Errorf("stream %d ended with grpc-status %q, want 4 (DeadlineExceeded)", tr.stream, tr.status)
			}
			ended[tr.stream] = time.Since(start)
		case id := <-rc.resets:
			ended[id] = time.Since(start)
		case <-time.After(10 * time.Second):
			t.Fatalf("calls without a request still open after 10s: ended %v", ended)
		}
	}
	t.Logf("sayHello ended after %v, getStream after %v", ended[hello].Round(time.Millisecond), ended[stream].Round(time.Millisecond))
	if ended[hello] > ended[stream] {
		t.Errorf("the unary call outlived the stream: its deadline is the shorter")
	}
}

// TestMetadataLimitFitsRealMetadata sends what real callers send, a trace
// context and a bearer token of 4 KB (a large JWT), and then more than the
// 8 KiB limit: the first is served, the second refused with a status.
func TestMetadataLimitFitsRealMetadata(t *testing.T) {
	b := backendtest.Start(t, backend.Config{})
	c := api.NewApiClient(dial(t, b.Addr))
	real := metadata.NewOutgoingContext(t.Context(), metadata.Pairs(
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		"tracestate", "congo=t61rcWkgMzE",
		"authorization", "Bearer "+strings.Repeat("x", 4096),
	))
	if _, err := c.SayHello(real, &api.HelloRequest{Name: "x"}); err != nil {
		t.Fatalf("sayHello with a trace context and a 4 KB token: %v", err)
	}
	over := metadata.NewOutgoingContext(t.Context(), metadata.Pairs("authorization", "Bearer "+strings.Repeat("x", 9<<10)))
	_, err := c.SayHello(over, &api.HelloRequest{Name: "x"})
	if code := status.Code(err); code == codes.OK || code == codes.Unknown {
		t.Fatalf("sayHello with 9 KiB of metadata: %v, want a refusal with a status", err)
	}
	t.Logf("9 KiB of metadata: %v", err)
}

// TestHonestCancelsKeepTheConnection cancels calls as fast as a grpc-go
// client can make and cancel them, 8 at a time, as a frontend whose users
// all leave at once would: a few hundred a second at most, within what the
// server allows, so the connection stays.
func TestHonestCancelsKeepTheConnection(t *testing.T) {
	b := backendtest.Start(t, backend.Config{})
	conn, dials := backendtest.DialCounting(t, b.Addr)
	c := api.NewApiClient(conn)
	start := time.Now()
	const workers, each = 8, 16
	const cancels = workers * each
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if err := readOneThenCancel(t.Context(), c); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	rate := float64(cancels) / time.Since(start).Seconds()
	if _, err := c.SayHello(t.Context(), &api.HelloRequest{Name: "x"}); err != nil {
		t.Fatalf("sayHello after %d cancels: %v", cancels, err)
	}
	if n := dials.Load(); n != 1 {
		t.Fatalf("%d connections for %d cancels at %.0f/s, want the first one kept", n, cancels, rate)
	}
	t.Logf("%d cancels at %.0f/s on one connection", cancels, rate)
}

func readOneThenCancel(ctx context.Context, c api.ApiClient) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	s, err := c.GetStream(ctx, &api.ApiRequest{Length: hugeStream})
	if err != nil {
		return err
	}
	_, err = s.Recv()
	return err
}
