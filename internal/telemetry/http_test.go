package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/grpcplay/grpcplay/internal/telemetry"
)

// patternRoute labels a request by the path of the pattern a ServeMux
// matched, as the frontend does.
func patternRoute(r *http.Request) string {
	if r.Pattern == "" {
		return "unmatched"
	}
	if _, path, ok := strings.Cut(r.Pattern, " "); ok {
		return path
	}
	return r.Pattern
}

func testMux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /items", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("bad") {
			http.Error(w, "bad length", http.StatusBadRequest)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	mux.HandleFunc("/healthz", func(http.ResponseWriter, *http.Request) {})
	return mux
}

func serve(h http.Handler, method, target string, header ...string) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, target, nil)
	req.RemoteAddr = "127.0.0.1:4242"
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	return w
}

func logLines(t *testing.T, buf *bytes.Buffer) []map[string]any {
	t.Helper()
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("log line %q: %v", l, err)
		}
		lines = append(lines, m)
	}
	return lines
}

// checkRequestLines checks the log lines of TestObserveHTTPMetricsAndLog's
// requests.
func checkRequestLines(t *testing.T, logs *bytes.Buffer) {
	lines := logLines(t, logs)
	// At info: /items only; the 400, 405, 404 and the first /healthz are
	// below it. At debug: /healthz and the second 404.
	if len(lines) != 3 {
		t.Fatalf("%d log lines, want 3: %s", len(lines), logs.String())
	}
	first := lines[0]
	for k, v := range map[string]any{"level": "INFO", "msg": "request", "method": "GET", "route": "/items", "status": 200.0, "peer": "127.0.0.1:4242"} {
		if first[k] != v {
			t.Errorf("first line %s = %v, want %v", k, first[k], v)
		}
	}
	if _, ok := first["duration"]; !ok {
		t.Error("first line has no duration")
	}
	if _, ok := first["trace_id"]; ok {
		t.Error("an untraced request's line has a trace_id")
	}
	if m := lines[1]; m["level"] != "DEBUG" || m["route"] != "/healthz" {
		t.Errorf("second line %v; want /healthz at debug", m)
	}
	if last := lines[2]; last["level"] != "DEBUG" || last["status"] != 404.0 {
		t.Errorf("last line %v; want the 404 at debug", last)
	}
}

// Requests are counted by standard method, route label and status, timed,
// and logged one line each, quiet routes and client errors at debug.
func TestObserveHTTPMetricsAndLog(t *testing.T) {
	reg := telemetry.NewRegistry()
	var logs bytes.Buffer
	level := new(slog.LevelVar)
	h := telemetry.ObserveHTTP(telemetry.HTTPConfig{
		Metrics: reg, Prefix: "web",
		RequestsHelp: "requests", DurationHelp: "duration", InFlightHelp: "in flight",
		Route:  patternRoute,
		Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: level})), LogMessage: "request",
		QuietRoutes: []string{"/healthz"},
	})(testMux())

	serve(h, "GET", "/items")
	serve(h, "GET", "/items?bad=1")
	serve(h, "BREW", "/items")
	serve(h, "GET", "/random-1")
	serve(h, "GET", "/healthz")
	level.Set(slog.LevelDebug)
	serve(h, "GET", "/healthz")
	serve(h, "GET", "/random-2")

	want := `
# HELP web_requests_total requests
# TYPE web_requests_total counter
web_requests_total{code="200",method="GET",route="/healthz"} 2
web_requests_total{code="200",method="GET",route="/items"} 1
web_requests_total{code="400",method="GET",route="/items"} 1
web_requests_total{code="404",method="GET",route="unmatched"} 2
web_requests_total{code="405",method="OTHER",route="unmatched"} 1
# HELP web_requests_in_flight in flight
# TYPE web_requests_in_flight gauge
web_requests_in_flight 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "web_requests_total", "web_requests_in_flight"); err != nil {
		t.Error(err)
	}
	if n := testutil.CollectAndCount(reg, "web_request_duration_seconds"); n != 4 {
		t.Errorf("%d duration series, want 4 (GET and OTHER unmatched, /items, /healthz)", n)
	}

	checkRequestLines(t, &logs)
}

// With LogPath the line has the raw path, not the route label.
func TestObserveHTTPLogPath(t *testing.T) {
	var logs bytes.Buffer
	h := telemetry.ObserveHTTP(telemetry.HTTPConfig{
		Route:  patternRoute,
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)), LogMessage: "REST call", LogPath: true,
	})(testMux())
	serve(h, "GET", "/items")
	lines := logLines(t, &logs)
	if len(lines) != 1 || lines[0]["path"] != "/items" || lines[0]["msg"] != "REST call" || lines[0]["route"] != nil {
		t.Errorf("lines %v; want one REST call line with path /items and no route", lines)
	}
}

// Streaming handlers can flush through the wrapper, both as an http.Flusher
// and through http.ResponseController, which needs Unwrap; a flush starts
// the response at 200.
func TestObserveHTTPFlush(t *testing.T) {
	reg := telemetry.NewRegistry()
	h := telemetry.ObserveHTTP(telemetry.HTTPConfig{Metrics: reg, Prefix: "web", Route: patternRoute})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /flusher", func(w http.ResponseWriter, _ *http.Request) {
		f, ok := w.(http.Flusher)
		if !ok {
			t.Error("the wrapped writer is not an http.Flusher")
			return
		}
		f.Flush()
	})
	mux.HandleFunc("GET /controller", func(w http.ResponseWriter, _ *http.Request) {
		if err := http.NewResponseController(w).Flush(); err != nil {
			t.Errorf("ResponseController.Flush: %v", err)
		}
		w.WriteHeader(http.StatusTeapot) // too late: the flush sent 200
	})
	for _, path := range []string{"/flusher", "/controller"} {
		if w := serve(h(mux), "GET", path); !w.Flushed || w.Code != http.StatusOK {
			t.Errorf("%s: flushed %v, status %d; want a flushed 200", path, w.Flushed, w.Code)
		}
	}
	want := `
# HELP web_requests_total 
# TYPE web_requests_total counter
web_requests_total{code="200",method="GET",route="/controller"} 1
web_requests_total{code="200",method="GET",route="/flusher"} 1
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "web_requests_total"); err != nil {
		t.Error(err)
	}
}

// brokenConn is a connection whose flushes fail, as a gone client's do.
type brokenConn struct{ *httptest.ResponseRecorder }

var errGone = errors.New("client gone")

func (brokenConn) FlushError() error { return errGone }

// A failed flush reaches the streaming handler through
// http.ResponseController, so that it stops.
func TestObserveHTTPFlushError(t *testing.T) {
	var got error
	h := telemetry.ObserveHTTP(telemetry.HTTPConfig{Metrics: telemetry.NewRegistry(), Prefix: "web", Route: patternRoute})(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { got = http.NewResponseController(w).Flush() }))
	h.ServeHTTP(brokenConn{httptest.NewRecorder()}, httptest.NewRequest("GET", "/", nil))
	if !errors.Is(got, errGone) {
		t.Errorf("Flush returned %v, want the connection's %v", got, errGone)
	}
}

// Recover turns a panic before the answer into an answer that is counted,
// and one after it into a cut connection that is counted too.
func TestObserveHTTPRecover(t *testing.T) {
	reg := telemetry.NewRegistry()
	var recovered []any
	h := telemetry.ObserveHTTP(telemetry.HTTPConfig{
		Metrics: reg, Prefix: "web", Route: patternRoute,
		Recover: func(w http.ResponseWriter, _ *http.Request, p any, started bool) bool {
			recovered = append(recovered, p)
			if started {
				return true
			}
			http.Error(w, "internal error", http.StatusInternalServerError)
			return false
		},
	})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /early", func(http.ResponseWriter, *http.Request) { panic("early") })
	mux.HandleFunc("GET /late", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("part"))
		panic("late")
	})
	mux.HandleFunc("GET /abort", func(http.ResponseWriter, *http.Request) { panic(http.ErrAbortHandler) })

	if w := serve(h(mux), "GET", "/early"); w.Code != http.StatusInternalServerError {
		t.Errorf("early panic: status %d, want 500", w.Code)
	}
	for _, path := range []string{"/late", "/abort"} {
		func() {
			defer func() {
				if p := recover(); p != http.ErrAbortHandler {
					t.Errorf("%s: panicked with %v, want http.ErrAbortHandler", path, p)
				}
			}()
			serve(h(mux), "GET", path)
		}()
	}
	if len(recovered) != 2 || recovered[0] != "early" || recovered[1] != "late" {
		t.Errorf("Recover got %v; want early and late, not the abort", recovered)
	}
	want := `
# HELP web_requests_total 
# TYPE web_requests_total counter
web_requests_total{code="200",method="GET",route="/abort"} 1
web_requests_total{code="200",method="GET",route="/late"} 1
web_requests_total{code="500",method="GET",route="/early"} 1
# HELP web_requests_in_flight 
# TYPE web_requests_in_flight gauge
web_requests_in_flight 0
`
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), "web_requests_total", "web_requests_in_flight"); err != nil {
		t.Error(err)
	}
}

// With no registry, no tracer provider and the log level above info, the
// handler gets the ResponseWriter itself: nothing is wrapped or counted.
func TestObserveHTTPOff(t *testing.T) {
	logger := slog.New(slog.NewJSONHandler(new(bytes.Buffer), &slog.HandlerOptions{Level: slog.LevelWarn}))
	w := httptest.NewRecorder()
	var got http.ResponseWriter
	h := telemetry.ObserveHTTP(telemetry.HTTPConfig{Route: patternRoute, Logger: logger})(
		http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { got = w }))
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if got != w {
		t.Errorf("the handler got %T, want the server's own ResponseWriter", got)
	}
}

// A traced request's span continues the caller's trace, is named by
// default after the method and route, and its trace ID is in the log line.
func TestObserveHTTPTracing(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer func() {
		if err := tp.Shutdown(context.Background()); err != nil && !errors.Is(err, context.Canceled) {
			t.Error(err)
		}
	}()
	var logs bytes.Buffer
	routeByPath := func(r *http.Request) string { return r.URL.Path }
	h := telemetry.ObserveHTTP(telemetry.HTTPConfig{
		Route: routeByPath, TracerProvider: tp, Operation: "web",
		Logger: slog.New(slog.NewJSONHandler(&logs, nil)), LogMessage: "request",
	})(testMux())

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	serve(h, "GET", "/items", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	ended := spans.Ended()
	if len(ended) != 1 {
		t.Fatalf("%d spans ended, want 1", len(ended))
	}
	if s := ended[0]; s.Name() != "GET /items" || s.SpanContext().TraceID().String() != traceID {
		t.Errorf("span %q in trace %s; want GET /items in the caller's trace %s", s.Name(), s.SpanContext().TraceID(), traceID)
	}
	if lines := logLines(t, &logs); len(lines) != 1 || lines[0]["trace_id"] != traceID {
		t.Errorf("log lines %v; want one with trace_id %s", lines, traceID)
	}
}
