package cli_test

import (
	"compress/gzip"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	collectorpb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/internal/cli"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// `grpcplay serve` exposes the backend's metrics on their own port and the
// frontend's on its /metrics, and serves /debug.
func TestServeExposesMetricsAndDebug(t *testing.T) {
	m := startServe(t, nil)
	if resp, body := testkit.Get(t, m.HTTPURL()+"/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d:\n%s", resp.StatusCode, body)
	}
	backend := telemetrytest.Scrape(t, m.MetricsURL())
	if got := backend.Value("grpc_server_handled_total", map[string]string{"grpc_method": "sayHello", "grpc_code": "OK"}); got != 1 {
		t.Errorf("backend sayHello OK = %v, want 1", got)
	}
	frontend := telemetrytest.Scrape(t, m.HTTPURL()+"/metrics")
	if got := frontend.Value("http_requests_total", map[string]string{"route": "/{$}", "code": "200"}); got != 1 {
		t.Errorf("frontend GET / 200 = %v, want 1", got)
	}
	if got := frontend.Value("grpc_client_handled_total", map[string]string{"grpc_method": "sayHello", "grpc_code": "OK"}); got != 1 {
		t.Errorf("frontend client sayHello OK = %v, want 1", got)
	}
	if resp, body := testkit.Get(t, m.HTTPURL()+"/debug"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "/api.Api/sayHello") {
		t.Errorf("GET /debug = %d:\n%s", resp.StatusCode, body)
	}
}

func TestEmptyMetricsAddrTurnsBackendMetricsOff(t *testing.T) {
	m := startServe(t, nil, "--metrics-addr", "")
	if url := m.MetricsURL(); url != "" {
		t.Fatalf("metrics served at %s with --metrics-addr empty", url)
	}
}

// The frontend alone has no /debug unless asked.
func TestDebugPageIsOffInFrontend(t *testing.T) {
	m := cli.NewMain(io.Discard, io.Discard, env(nil))
	if err := m.ParseFlags([]string{"frontend", "--http-addr", "127.0.0.1:0", "--backend", "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if resp, _ := testkit.Get(t, m.HTTPURL()+"/debug"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("GET /debug = %d, want 404", resp.StatusCode)
	}
}

func TestLogFormatJSON(t *testing.T) {
	var logs telemetrytest.LogBuffer
	m := cli.NewMain(io.Discard, &logs, env(map[string]string{"GRPCPLAY_LOG_FORMAT": "json"}))
	if err := m.ParseFlags([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	testkit.Get(t, m.HTTPURL()+"/")
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}
	lines := logs.Lines(t)
	if got := telemetrytest.Matching(lines, map[string]any{"msg": "request", "route": "/{$}"}); len(got) != 1 {
		t.Errorf("%d request lines for GET /, want 1:\n%v", len(got), lines)
	}
	if got := telemetrytest.Matching(lines, map[string]any{"msg": "call", "method": "/api.Api/getAll", "code": "OK"}); len(got) != 1 {
		t.Errorf("%d call lines for getAll, want 1:\n%v", len(got), lines)
	}
}

func TestObservabilitySettingsAreChecked(t *testing.T) {
	for _, tt := range []struct {
		args     []string
		vars     map[string]string
		inOutput string
	}{
		{[]string{"serve", "--log-format", "xml"}, nil, "--log-format must be text or json"},
		{[]string{"backend"}, map[string]string{"GRPCPLAY_LOG_FORMAT": "yaml"}, "--log-format must be text or json"},
		{[]string{"backend", "--metrics-addr", "9464"}, nil, "--metrics-addr"},
		{[]string{"frontend"}, map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318", "OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, `OTLP protocol "http/json" is not supported`},
		{[]string{"serve", "--log-level", "loud"}, nil, "log-level"},
	} {
		t.Run(fmt.Sprint(tt.args, tt.vars), func(t *testing.T) {
			code, stdout, stderr := execute(t, tt.vars, tt.args...)
			if code != 2 || !strings.Contains(stdout+stderr, tt.inOutput) {
				t.Fatalf("exit %d, output %q; want exit 2 containing %q", code, stdout+stderr, tt.inOutput)
			}
		})
	}
}

// collector is an OTLP/HTTP trace receiver, as any collector has.
type collector struct {
	mu    sync.Mutex
	spans []*tracepb.ResourceSpans
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want protobuf on /v1/traces", http.StatusBadRequest)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	var req collectorpb.ExportTraceServiceRequest
	if err == nil {
		err = proto.Unmarshal(data, &req)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	c.spans = append(c.spans, req.GetResourceSpans()...)
	c.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&collectorpb.ExportTraceServiceResponse{})
	_, _ = w.Write(out)
}

// With the standard variable set, serve exports one trace per page view,
// from the frontend's request into the backend's calls, to the collector,
// and flushes it on shutdown.
func TestServeExportsTracesOverOTLP(t *testing.T) {
	var col collector
	ts := httptest.NewServer(&col)
	defer ts.Close()
	// The exporter reads the process's environment, as in production.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", ts.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	m := cli.NewMain(io.Discard, io.Discard, env(map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": ts.URL}))
	if err := m.ParseFlags([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "", "--rest-addr", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	if resp, _ := testkit.Get(t, m.HTTPURL()+"/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d", resp.StatusCode)
	}
	if err := m.Close(); err != nil {
		t.Fatal(err)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	traces := map[string][]string{} // trace id -> span names
	for _, rs := range col.spans {
		service := ""
		for _, a := range rs.GetResource().GetAttributes() {
			if a.GetKey() == "service.name" {
				service = a.GetValue().GetStringValue()
			}
		}
		if service != "grpcplay" {
			t.Errorf("spans from service %q, want grpcplay", service)
		}
		for _, ss := range rs.GetScopeSpans() {
			for _, sp := range ss.GetSpans() {
				id := fmt.Sprintf("%x", sp.GetTraceId())
				traces[id] = append(traces[id], fmt.Sprintf("%s/%s", sp.GetKind(), sp.GetName()))
			}
		}
	}
	var page []string
	for _, names := range traces {
		if strings.Contains(strings.Join(names, " "), "SPAN_KIND_SERVER/GET /{$}") {
			page = names
		}
	}
	all := strings.Join(page, " ")
	for _, want := range []string{
		"SPAN_KIND_CLIENT/api.Api/sayHello", "SPAN_KIND_SERVER/api.Api/sayHello",
		"SPAN_KIND_SERVER/api.Api/getAll", "SPAN_KIND_SERVER/api.Api/getStream",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the page's trace lacks %s: %v (all traces: %v)", want, page, traces)
		}
	}
}

// With --backend-refresh the frontend still serves the page from a backend
// it finds by name.
func TestFrontendWithBackendRefresh(t *testing.T) {
	b := startServe(t, nil)
	_, port, _ := net.SplitHostPort(b.GRPCAddr())
	m := cli.NewMain(io.Discard, io.Discard, env(map[string]string{"GRPCPLAY_BACKEND_REFRESH": "50ms"}))
	if err := m.ParseFlags([]string{"frontend", "--http-addr", "127.0.0.1:0", "--backend", "dns:///localhost:" + port}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if resp, body := testkit.Get(t, m.HTTPURL()+"/"); resp.StatusCode != http.StatusOK || !strings.Contains(body, "Hello Gonzalo!") {
		t.Fatalf("GET / = %d:\n%s", resp.StatusCode, body)
	}
}
