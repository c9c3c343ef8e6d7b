package reliability_test

import (
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
)

// TestHealthWatchDoesNotHoldShutdown watches the backend's health, as a
// load balancer or a service mesh does, and sends SIGTERM: the process must
// end the watch and exit at once, not after its 20s grace.
func TestHealthWatchDoesNotHoldShutdown(t *testing.T) {
	p := startServe(t)
	conn, err := grpc.NewClient(p.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	watch, err := healthpb.NewHealthClient(conn).Watch(t.Context(), &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if r, err := watch.Recv(); err != nil || r.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("first health update: %v, %v; want SERVING", r, err)
	}
	sent := time.Now()
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		r, err := watch.Recv()
		if err != nil {
			if status.Code(err) != codes.Unavailable {
				t.Errorf("watch ended with %v, want Unavailable", err)
			}
			break
		}
		if r.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health update during shutdown: %v, want NOT_SERVING", r.GetStatus())
		}
	}
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		t.Fatalf("serve still runs 15s after SIGTERM with a health watch open\n%s", p.stderr.String())
	}
	took := time.Since(sent)
	t.Logf("exit %v, %v after SIGTERM", p.err, took.Round(time.Millisecond))
	if p.err != nil {
		t.Errorf("serve exited with %v after SIGTERM, want status 0\n%s", p.err, p.stderr.String())
	}
	if strings.Contains(p.stderr.String(), "grace period over") {
		t.Errorf("shutdown waited out its grace:\n%s", p.stderr.String())
	}
}

// TestLongStreamOutlivesConnectionAge holds a getStream open, its reader
// stalled, past the connection's maximum age, then reads it to the end: the
// age's grace covers the longest stream the server allows, so the stream
// ends with OK, not Unavailable. The GOAWAY that starts the grace is the
// event waited for.
func TestLongStreamOutlivesConnectionAge(t *testing.T) {
	p := startServe(t, "--max-connection-age", "1s")
	rc := dialRaw(t, p.grpc)
	const items = 20_000 // more than the 64 KiB window lets out before the age
	id := rc.open(grpcHeaders(api.Api_GetStream_FullMethodName), false)
	if id == 0 || !rc.request(id, getStreamRequest(items)) {
		t.Fatal("could not start the stream")
	}
	select {
	case <-rc.goAway:
	case <-time.After(20 * time.Second):
		t.Fatal("no GOAWAY within 20s of a 1s connection age")
	}
	select {
	case <-rc.trailers:
		t.Fatal("the stream ended before its reader read it")
	default:
	}
	// Now read: open the windows wide.
	if !rc.write(func() error { return rc.fr.WriteWindowUpdate(0, 1<<30) }) ||
		!rc.write(func() error { return rc.fr.WriteWindowUpdate(id, 1<<30) }) {
		t.Fatal("the server closed the connection in its grace")
	}
	select {
	case got := <-rc.trailers:
		if got.stream != id || got.status != "0" {
			t.Fatalf("stream %d ended with grpc-status %q, want stream %d with 0", got.stream, got.status, id)
		}
	case <-rc.resets:
		t.Fatal("the stream was reset in the connection's grace")
	case <-time.After(20 * time.Second):
		t.Fatal("the stream did not end within 20s of being read")
	}
}
