package backend_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"regexp"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc/codes"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/internal/telemetry"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
)

// serveMetrics serves reg as `grpcplay backend` does, on a loopback port,
// and returns its /metrics URL.
func serveMetrics(t *testing.T, reg *prometheus.Registry) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := telemetry.NewMetricsServer(reg, slog.New(slog.DiscardHandler))
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("metrics Shutdown: %v", err)
		}
		if err := <-served; !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("metrics Serve: %v", err)
		}
	})
	return "http://" + lis.Addr().String() + "/metrics"
}

func TestMetricsCountCallsByMethodAndCode(t *testing.T) {
	reg := telemetry.NewRegistry()
	url := serveMetrics(t, reg)
	conn, _ := startServer(t, backend.Config{Metrics: reg})
	c := api.NewApiClient(conn)

	before := telemetrytest.Scrape(t, url)
	// Every method's series exist before its first call, so that rate()
	// and absent() work from the first scrape.
	if _, ok := before["grpc_server_handled_total"]; !ok {
		t.Fatal("no grpc_server_handled_total before any call")
	}
	if n := before.Value("grpc_server_handled_total", map[string]string{"grpc_method": "sayHello", "grpc_code": "OK"}); n != 0 {
		t.Fatalf("sayHello OK = %v before any call", n)
	}
	for range 2 {
		if _, err := c.SayHello(t.Context(), &api.HelloRequest{Name: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	_, err := c.GetAll(t.Context(), &api.ApiRequest{Length: -1})
	wantCode(t, err, codes.InvalidArgument, "")
	items, err := collect(c.GetStream(t.Context(), &api.ApiRequest{Length: 7}))
	if err != nil || len(items) != 7 {
		t.Fatalf("GetStream(7) = %d items, %v", len(items), err)
	}

	m := telemetrytest.Scrape(t, url)
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"grpc_server_started_total", map[string]string{"grpc_method": "sayHello"}, 2},
		{"grpc_server_handled_total", map[string]string{"grpc_service": "api.Api", "grpc_method": "sayHello", "grpc_type": "unary", "grpc_code": "OK"}, 2},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "getAll", "grpc_code": "InvalidArgument"}, 1},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "getAll", "grpc_code": "OK"}, 0},
		{"grpc_server_handled_total", map[string]string{"grpc_method": "getStream", "grpc_type": "server_stream", "grpc_code": "OK"}, 1},
		{"grpc_server_handling_seconds", map[string]string{"grpc_method": "sayHello"}, 2},
		{"grpc_server_msg_sent_total", map[string]string{"grpc_method": "getStream"}, 7},
		{"grpc_server_msg_received_total", map[string]string{"grpc_method": "getStream"}, 1},
	} {
		if got := m.Value(tt.name, tt.labels); got != tt.want {
			t.Errorf("%s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	for _, name := range []string{"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes"} {
		if _, ok := m[name]; !ok {
			t.Errorf("/metrics lacks the runtime metric %s", name)
		}
	}
}

// A server restarted with the same registry, as a test bringing a backend
// back does, keeps counting in the same series instead of panicking.
func TestMetricsSurviveARestartOnOneRegistry(t *testing.T) {
	reg := telemetry.NewRegistry()
	for range 2 {
		conn, b := startServer(t, backend.Config{Metrics: reg})
		if _, err := api.NewApiClient(conn).SayHello(t.Context(), &api.HelloRequest{Name: "x"}); err != nil {
			t.Fatal(err)
		}
		b.Stop(time.Second)
	}
	m := telemetrytest.Scrape(t, serveMetrics(t, reg))
	if got := m.Value("grpc_server_handled_total", map[string]string{"grpc_method": "sayHello", "grpc_code": "OK"}); got != 2 {
		t.Fatalf("sayHello OK = %v over two servers, want 2", got)
	}
}

// logCalls makes an OK sayHello, a getAll that fails with InvalidArgument
// and then more calls on a server logging in format at debug, and returns
// the log once the server has stopped.
func logCalls(t *testing.T, format string, more func(api.ApiClient)) *telemetrytest.LogBuffer {
	t.Helper()
	logs := &telemetrytest.LogBuffer{}
	log, err := telemetry.NewLogger(logs, format, slog.LevelDebug)
	if err != nil {
		t.Fatal(err)
	}
	conn, srv := startServer(t, backend.Config{Logger: log})
	c := api.NewApiClient(conn)
	if _, err := c.SayHello(t.Context(), &api.HelloRequest{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	_, err = c.GetAll(t.Context(), &api.ApiRequest{Length: -1})
	wantCode(t, err, codes.InvalidArgument, "")
	more(c)
	srv.Stop(time.Second)
	return logs
}

// Each call is one log line when it ends, with its method, code, duration
// and peer: a stream too, however many items it sends. A client's mistake is
// a debug line, so that no client can flood the log.
func TestLogsOneLinePerCall(t *testing.T) {
	logs := logCalls(t, "json", func(c api.ApiClient) {
		if _, err := collect(c.GetStream(t.Context(), &api.ApiRequest{Length: 500})); err != nil {
			t.Fatal(err)
		}
	})
	lines := logs.Lines(t)
	for _, tt := range []struct {
		method, code, level string
	}{
		{"/api.Api/sayHello", "OK", "INFO"},
		{"/api.Api/getAll", "InvalidArgument", "DEBUG"},
		{"/api.Api/getStream", "OK", "INFO"},
	} {
		got := telemetrytest.Matching(lines, map[string]any{"msg": "call", "method": tt.method})
		if len(got) != 1 {
			t.Errorf("%d log lines for %s, want 1:\n%v", len(got), tt.method, lines)
			continue
		}
		line := got[0]
		if line["level"] != tt.level || line["code"] != tt.code {
			t.Errorf("%s logged %v, want level %s and code %s", tt.method, line, tt.level, tt.code)
		}
		if d, ok := line["duration"].(float64); !ok || d <= 0 {
			t.Errorf("%s logged duration %v, want a positive number of nanoseconds", tt.method, line["duration"])
		}
		if peer, _ := line["peer"].(string); !isLoopback(peer) {
			t.Errorf("%s logged peer %q, want the client's loopback address", tt.method, line["peer"])
		}
		if _, ok := line["trace_id"]; ok {
			t.Errorf("%s logged a trace_id with tracing off: %v", tt.method, line)
		}
	}
}

// The line of an OK call, whose method and code are formatted once, reads
// as any other call's: method, code, duration and peer, in that order.
func TestCallLinesKeepTheirFieldOrder(t *testing.T) {
	text := logCalls(t, "text", func(api.ApiClient) {}).String()
	for _, want := range []*regexp.Regexp{
		regexp.MustCompile(`(?m)^time=\S+ level=INFO msg=call method=/api\.Api/sayHello code=OK duration=\S+ peer=127\.0\.0\.1:\d+$`),
		regexp.MustCompile(`(?m)^time=\S+ level=DEBUG msg=call method=/api\.Api/getAll code=InvalidArgument duration=\S+ peer=127\.0\.0\.1:\d+$`),
	} {
		if !want.MatchString(text) {
			t.Errorf("no line matches %s in:\n%s", want, text)
		}
	}
}

// At warn, the per-call lines cost nothing and say nothing.
func TestNoCallLinesAboveInfo(t *testing.T) {
	var logs telemetrytest.LogBuffer
	log, err := telemetry.NewLogger(&logs, "json", slog.LevelWarn)
	if err != nil {
		t.Fatal(err)
	}
	conn, srv := startServer(t, backend.Config{Logger: log})
	if _, err := api.NewApiClient(conn).SayHello(t.Context(), &api.HelloRequest{Name: "x"}); err != nil {
		t.Fatal(err)
	}
	srv.Stop(time.Second)
	if lines := logs.Lines(t); len(lines) != 0 {
		t.Fatalf("logged at warn: %v", lines)
	}
}

func isLoopback(hostPort string) bool {
	host, _, err := net.SplitHostPort(hostPort)
	return err == nil && net.ParseIP(host).IsLoopback()
}
