package frontend

import (
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/telemetry"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// observedStack is a backend and a frontend wired as `grpcplay serve` wires
// them, each with its own registry, logs and tracer provider.
type observedStack struct {
	frontend         *httptest.Server
	backend          *backendtest.Backend
	client           *client.Client
	backendMetrics   string // URL of the backend's /metrics
	frontendLogs     telemetrytest.LogBuffer
	backendLogs      telemetrytest.LogBuffer
	frontendSpans    *tracetest.SpanRecorder
	backendSpans     *tracetest.SpanRecorder
	frontendRegistry *prometheus.Registry
}

func jsonLogger(t testing.TB, w *telemetrytest.LogBuffer) *slog.Logger {
	t.Helper()
	log, err := telemetry.NewLogger(w, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	return log
}

// startObserved starts the stack with metrics and logs, and with tracing
// when traced is set.
func startObserved(t *testing.T, cfg Config, traced bool) *observedStack {
	t.Helper()
	s := &observedStack{}
	var frontendTP, backendTP trace.TracerProvider
	if traced {
		s.frontendSpans, s.backendSpans = tracetest.NewSpanRecorder(), tracetest.NewSpanRecorder()
		frontendTP = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.frontendSpans))
		backendTP = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(s.backendSpans))
	}
	backendRegistry := telemetry.NewRegistry()
	s.backend = backendtest.Start(t, backend.Config{
		Metrics: backendRegistry, TracerProvider: backendTP, Logger: jsonLogger(t, &s.backendLogs),
	})
	metrics := httptest.NewServer(telemetry.MetricsHandler(backendRegistry, slog.New(slog.DiscardHandler)))
	t.Cleanup(metrics.Close)
	s.backendMetrics = metrics.URL

	s.frontendRegistry = telemetry.NewRegistry()
	c, err := client.New(s.backend.Addr, client.WithDialOptions(telemetry.GRPCClientOptions(s.frontendRegistry, frontendTP)...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	s.client = c
	cfg.Metrics, cfg.TracerProvider, cfg.Logger = s.frontendRegistry, frontendTP, jsonLogger(t, &s.frontendLogs)
	s.frontend = newFrontend(t, cfg, c)
	return s
}

func do(t *testing.T, method, url string, header http.Header) int {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	// Read to the end: the server counts and logs a request before its
	// response ends.
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode
}

// noRawPathLabel checks that no series has raw for a label: raw paths are
// folded, so that a scan cannot grow the series.
func noRawPathLabel(t *testing.T, m telemetrytest.Metrics, raw string) {
	for _, f := range m {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				if l.GetValue() == raw {
					t.Errorf("%s has a raw path label %q", f.GetName(), raw)
				}
			}
		}
	}
}

func TestMetricsCountRequestsAndBackendCalls(t *testing.T) {
	s := startObserved(t, Config{}, false)
	for _, tt := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/", 200},
		{"GET", "/?items=x", 400},
		{"GET", "/no/such/page", 404},
		{"POST", "/live", 405},
		{"GET", "/live/events?length=5", 200},
	} {
		if got := do(t, tt.method, s.frontend.URL+tt.path, nil); got != tt.want {
			t.Fatalf("%s %s: %d, want %d", tt.method, tt.path, got, tt.want)
		}
	}

	m := telemetrytest.Scrape(t, s.frontend.URL+"/metrics")
	for _, tt := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"http_requests_total", map[string]string{"method": "GET", "route": "/{$}", "code": "200"}, 1},
		{"http_requests_total", map[string]string{"method": "GET", "route": "/{$}", "code": "400"}, 1},
		// Unknown paths share one series, whatever the path.
		{"http_requests_total", map[string]string{"method": "GET", "route": "unmatched", "code": "404"}, 1},
		{"http_requests_total", map[string]string{"method": "POST", "route": "unmatched", "code": "405"}, 1},
		{"http_requests_total", map[string]string{"route": "/live/events", "code": "200"}, 1},
		{"http_request_duration_seconds", map[string]string{"method": "GET", "route": "/{$}"}, 2},
		// The page's three calls, and the live view's stream.
		{"grpc_client_handled_total", map[string]string{"grpc_method": "sayHello", "grpc_code": "OK"}, 1},
		{"grpc_client_handled_total", map[string]string{"grpc_method": "getAll", "grpc_code": "OK"}, 1},
		{"grpc_client_handled_total", map[string]string{"grpc_method": "getStream", "grpc_code": "OK"}, 2},
		{"grpc_client_handling_seconds", map[string]string{"grpc_method": "getAll"}, 1},
		{"grpc_client_msg_received_total", map[string]string{"grpc_method": "getStream"}, 5 + 5},
	} {
		if got := m.Value(tt.name, tt.labels); got != tt.want {
			t.Errorf("frontend %s%v = %v, want %v", tt.name, tt.labels, got, tt.want)
		}
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("frontend /metrics lacks the Go runtime metrics")
	}
	noRawPathLabel(t, m, "/no/such/page")

	b := telemetrytest.Scrape(t, s.backendMetrics)
	for method, want := range map[string]float64{"sayHello": 1, "getAll": 1, "getStream": 2} {
		if got := b.Value("grpc_server_handled_total", map[string]string{"grpc_method": method, "grpc_code": "OK"}); got != want {
			t.Errorf("backend %s OK = %v, want %v", method, got, want)
		}
	}
}

func serverSpans(spans []sdktrace.ReadOnlySpan) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.SpanKind() == trace.SpanKindServer {
			out = append(out, s)
		}
	}
	return out
}

// One trace runs from the browser's request through the frontend into each
// backend call, across a real gRPC connection, in W3C trace context.
// backendSpansAreChildren checks that each of the backend's server spans is
// in trace traceID, a child of the frontend's client span of the same call.
func backendSpansAreChildren(t *testing.T, frontendSpans, backendSpans []sdktrace.ReadOnlySpan, traceID trace.TraceID) {
	clientSpans := map[trace.SpanID]string{}
	for _, sp := range frontendSpans {
		if sp.SpanKind() == trace.SpanKindClient {
			clientSpans[sp.SpanContext().SpanID()] = sp.Name()
		}
	}
	var names []string
	for _, sp := range serverSpans(backendSpans) {
		names = append(names, sp.Name())
		if sp.SpanContext().TraceID() != traceID {
			t.Errorf("backend span %s in trace %s, want %s", sp.Name(), sp.SpanContext().TraceID(), traceID)
		}
		if !sp.Parent().IsRemote() || clientSpans[sp.Parent().SpanID()] != sp.Name() {
			t.Errorf("backend span %s has parent %v, want the frontend's client span of the same call", sp.Name(), sp.Parent())
		}
	}
	for _, rpc := range pageCalls {
		// A span is named after the method without its leading slash.
		if want := strings.TrimPrefix(fullMethod(rpc), "/"); !strings.Contains(strings.Join(names, " "), want) {
			t.Errorf("no backend span %s among %v", want, names)
		}
	}
}

func TestTraceContinuesIntoTheBackend(t *testing.T) {
	const incoming = "0af7651916cd43dd8448eb211c80319c"
	for _, tt := range []struct {
		name   string
		header http.Header
	}{
		{"started by the frontend", nil},
		{"continued from the browser", http.Header{"Traceparent": {"00-" + incoming + "-b7ad6b7169203331-01"}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := startObserved(t, Config{}, true)
			if got := do(t, "GET", s.frontend.URL+"/?items=2&stream=3", tt.header); got != 200 {
				t.Fatalf("GET /: %d", got)
			}
			// Spans end a moment after the calls they time.
			testkit.Eventually(t, 10*time.Second, func() error {
				front, back := len(serverSpans(s.frontendSpans.Ended())), len(serverSpans(s.backendSpans.Ended()))
				return testkit.Failf(front == 1 && back == len(pageCalls), "%d frontend request spans and %d backend call spans, want 1 and %d", front, back, len(pageCalls))
			})

			root := serverSpans(s.frontendSpans.Ended())[0]
			traceID := root.SpanContext().TraceID()
			if tt.header != nil && traceID.String() != incoming {
				t.Fatalf("frontend span in trace %s, want the browser's %s", traceID, incoming)
			}
			if root.Name() != "GET /{$}" {
				t.Errorf("frontend span named %q, want the route", root.Name())
			}
			backendSpansAreChildren(t, s.frontendSpans.Ended(), s.backendSpans.Ended(), traceID)

			// The logs of both sides name the same trace.
			s.backend.Stop(time.Second)
			id := traceID.String()
			if got := telemetrytest.Matching(s.frontendLogs.Lines(t), map[string]any{"msg": "request", "trace_id": id}); len(got) != 1 {
				t.Errorf("%d frontend request lines with trace_id %s, want 1", len(got), id)
			}
			if got := telemetrytest.Matching(s.backendLogs.Lines(t), map[string]any{"msg": "call", "trace_id": id}); len(got) != len(pageCalls) {
				t.Errorf("%d backend call lines with trace_id %s, want %d:\n%v", len(got), id, len(pageCalls), s.backendLogs.Lines(t))
			}
		})
	}
}

// Each request is one line, when it ends, with the fields an access log
// needs; a live stream is one line however many items it sends, and probes
// and client errors (the 400) are quiet at info.
func TestAccessLogHasOneLinePerRequest(t *testing.T) {
	s := startObserved(t, Config{}, false)
	do(t, "GET", s.frontend.URL+"/", nil)
	do(t, "GET", s.frontend.URL+"/?items=x", nil)
	do(t, "GET", s.frontend.URL+"/live/events?length=200", nil)
	do(t, "GET", s.frontend.URL+"/healthz", nil)
	do(t, "GET", s.frontend.URL+"/metrics", nil)

	lines := s.frontendLogs.Lines(t)
	for _, tt := range []struct {
		route  string
		status float64
	}{{"/{$}", 200}, {"/live/events", 200}} {
		got := telemetrytest.Matching(lines, map[string]any{"msg": "request", "route": tt.route, "status": tt.status})
		if len(got) != 1 {
			t.Errorf("%d lines for %s %v, want 1:\n%v", len(got), tt.route, tt.status, lines)
			continue
		}
		line := got[0]
		if line["level"] != "INFO" || line["method"] != "GET" {
			t.Errorf("line %v, want level INFO and method GET", line)
		}
		if d, ok := line["duration"].(float64); !ok || d <= 0 {
			t.Errorf("line %v has no positive duration", line)
		}
		if host, _, err := net.SplitHostPort(fmtString(line["peer"])); err != nil || !net.ParseIP(host).IsLoopback() {
			t.Errorf("line %v has peer %v, want the client's loopback address", line, line["peer"])
		}
	}
	for _, quiet := range []string{"/healthz", "/metrics"} {
		if got := telemetrytest.Matching(lines, map[string]any{"route": quiet}); len(got) != 0 {
			t.Errorf("%s logged at info: %v", quiet, got)
		}
	}
}

func fmtString(v any) string {
	s, _ := v.(string)
	return s
}

func TestDebugPage(t *testing.T) {
	t.Run("off by default", func(t *testing.T) {
		s := startObserved(t, Config{}, false)
		if got := do(t, "GET", s.frontend.URL+"/debug", nil); got != http.StatusNotFound {
			t.Fatalf("/debug: %d, want 404", got)
		}
		// Nor does the navigation link to it.
		if _, body := testkit.Get(t, s.frontend.URL+"/"); strings.Contains(body, `href="/debug"`) {
			t.Error("the navigation links to /debug, which is not served")
		}
	})
	t.Run("shows the backend", func(t *testing.T) {
		s := startObserved(t, Config{DebugPage: true}, false)
		do(t, "GET", s.frontend.URL+"/", nil)
		do(t, "GET", s.frontend.URL+"/", nil)
		resp, body := testkit.Get(t, s.frontend.URL+"/debug")
		if resp.StatusCode != 200 {
			t.Fatalf("/debug: %d\n%s", resp.StatusCode, body)
		}
		for _, want := range []string{
			`<td id="conn-state">READY</td>`,
			"<li><code>" + s.backend.Addr + "</code></li>",
			"<td><code>/api.Api/sayHello</code></td><td>OK</td><td class=\"id\">2</td>",
			"<td><code>/api.Api/getStream</code></td><td>OK</td><td class=\"id\">2</td>",
		} {
			if !strings.Contains(body, want) {
				t.Errorf("/debug lacks %q:\n%s", want, body)
			}
		}
	})
	t.Run("says what it cannot show", func(t *testing.T) {
		ts := newFrontend(t, Config{DebugPage: true}, &blockingBackend{})
		resp, body := testkit.Get(t, ts.URL+"/debug")
		if resp.StatusCode != 200 {
			t.Fatalf("/debug: %d\n%s", resp.StatusCode, body)
		}
		for _, want := range []string{"connection state is unavailable", "resolved addresses are unavailable", "metrics are off"} {
			if !strings.Contains(body, want) {
				t.Errorf("/debug lacks %q:\n%s", want, body)
			}
		}
	})
	t.Run("before the first call", func(t *testing.T) {
		s := startObserved(t, Config{DebugPage: true}, false)
		_, body := testkit.Get(t, s.frontend.URL+"/debug")
		if !strings.Contains(body, "No calls yet.") || !strings.Contains(body, "IDLE") {
			t.Errorf("/debug before any call:\n%s", body)
		}
	})
}
