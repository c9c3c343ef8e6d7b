package cli_test

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/grpcplay/grpcplay/internal/cli"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// startUnmanaged runs serve like startServe, but leaves Close to the test.
func startUnmanaged(t *testing.T, logs io.Writer, extra ...string) *cli.Main {
	t.Helper()
	m := cli.NewMain(io.Discard, logs, env(nil))
	args := append([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0"}, extra...)
	if err := m.ParseFlags(args); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	return m
}

// holdFrontendDrain opens a connection to the frontend and sends half a
// request: the frontend's graceful shutdown waits for it until the test
// closes it, which is how a slow page view holds a real one.
func holdFrontendDrain(t *testing.T, m *cli.Main) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(m.HTTPURL(), "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: grpcplay\r\n"); err != nil {
		t.Fatal(err)
	}
	return conn
}

func watchHealth(t *testing.T, ctx context.Context, addr string) healthpb.Health_WatchClient {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	watch, err := healthpb.NewHealthClient(conn).Watch(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := watch.Recv(); err != nil || s.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		t.Fatalf("health before shutdown = %v, %v; want SERVING", s.GetStatus(), err)
	}
	return watch
}

// On shutdown, gRPC health turns NOT_SERVING before anything drains, so
// that probes take the process out of rotation while every face still
// answers: here the frontend's drain is held open, and REST must still
// answer after health said NOT_SERVING.
func TestShutdownTurnsHealthNotServingBeforeAnythingDrains(t *testing.T) {
	m := startUnmanaged(t, io.Discard, "--grace", "1m")
	held := holdFrontendDrain(t, m)
	defer held.Close()
	watchCtx, endWatch := context.WithTimeout(t.Context(), 30*time.Second)
	defer endWatch()
	watch := watchHealth(t, watchCtx, m.GRPCAddr())

	closed := make(chan error, 1)
	go func() { closed <- m.Close() }()
	if s, err := watch.Recv(); err != nil || s.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
		t.Fatalf("health during shutdown = %v, %v; want NOT_SERVING while the frontend drains", s.GetStatus(), err)
	}
	endWatch()
	if resp, body := testkit.Get(t, m.RESTURL()+"/v1/hello?name=drain"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello drain!") {
		t.Errorf("REST after NOT_SERVING = %d %s; want it still answering", resp.StatusCode, body)
	}
	held.Close()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
}

// A drain that runs out of grace is cut off by design: logged, and not a
// failure, so SIGTERM still exits 0. Here the frontend's drain holds the
// whole grace, and a REST stream whose reader stopped reading is still in
// flight when REST's turn comes.
func TestForcedStopAfterGraceIsNotAFailure(t *testing.T) {
	var logs telemetrytest.LogBuffer
	m := startUnmanaged(t, &logs, "--grace", "300ms", "--log-format", "json")
	held := holdFrontendDrain(t, m)
	defer held.Close()
	resp, err := http.Get(m.RESTURL() + "/v1/stream?length=10000000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}

	if err := m.Close(); err != nil {
		t.Fatalf("Close after the grace ran out = %v; want nil", err)
	}
	if got := telemetrytest.Matching(logs.Lines(t), map[string]any{"level": "WARN", "msg": "grace period over; closing connections"}); len(got) != 1 {
		t.Errorf("%d warnings for the frontend cut off, want 1:\n%v", len(got), logs.Lines(t))
	}
}
