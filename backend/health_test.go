package backend_test

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/internal/telemetry"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
)

// SetNotServing turns health to NOT_SERVING while the server still answers
// calls, so that a process can take itself out of rotation before it drains
// its other faces.
func TestSetNotServingKeepsServingCalls(t *testing.T) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := backend.New(backend.Config{})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	}()
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()

	srv.SetNotServing()
	for _, service := range []string{"", "api.Api"} {
		reply, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{Service: service})
		if err != nil || reply.GetStatus() != healthpb.HealthCheckResponse_NOT_SERVING {
			t.Errorf("health %q after SetNotServing = %v, %v; want NOT_SERVING", service, reply.GetStatus(), err)
		}
	}
	if _, err := api.NewApiClient(conn).SayHello(t.Context(), &api.HelloRequest{Name: "x"}); err != nil {
		t.Errorf("sayHello after SetNotServing: %v", err)
	}
}

// Health checks come every few seconds from every probe: they are logged at
// debug, while the calls they sit next to stay at info.
func TestHealthChecksAreLoggedAtDebug(t *testing.T) {
	for _, tt := range []struct {
		level      slog.Level
		wantHealth int
	}{{slog.LevelInfo, 0}, {slog.LevelDebug, 1}} {
		t.Run(tt.level.String(), func(t *testing.T) {
			var logs telemetrytest.LogBuffer
			log, err := telemetry.NewLogger(&logs, "json", tt.level)
			if err != nil {
				t.Fatal(err)
			}
			conn, srv := startServer(t, backend.Config{Logger: log})
			if _, err := healthpb.NewHealthClient(conn).Check(t.Context(), &healthpb.HealthCheckRequest{}); err != nil {
				t.Fatal(err)
			}
			if _, err := api.NewApiClient(conn).SayHello(t.Context(), &api.HelloRequest{Name: "x"}); err != nil {
				t.Fatal(err)
			}
			srv.Stop(time.Second)
			lines := logs.Lines(t)
			health := telemetrytest.Matching(lines, map[string]any{"msg": "call", "method": "/grpc.health.v1.Health/Check"})
			if len(health) != tt.wantHealth {
				t.Fatalf("%d lines for the health check at %v, want %d:\n%v", len(health), tt.level, tt.wantHealth, lines)
			}
			for _, line := range health {
				if line["level"] != "DEBUG" {
					t.Errorf("health check logged at %v, want DEBUG", line["level"])
				}
			}
			if got := telemetrytest.Matching(lines, map[string]any{"msg": "call", "method": "/api.Api/sayHello", "level": "INFO"}); len(got) != 1 {
				t.Errorf("%d info lines for sayHello, want 1:\n%v", len(got), lines)
			}
		})
	}
}
