package gateway

import (
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/internal/telemetry"
)

// restMetrics are the gateway's request metrics, in the backend's registry
// next to its grpc_server_* ones. Routes are the gateway's own paths, never
// raw ones, so that a scan of random URLs cannot grow the number of series.
type restMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newRESTMetrics(reg *prometheus.Registry) *restMetrics {
	return &restMetrics{
		requests: telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "rest_requests_total",
			Help: "REST/JSON requests the gateway answered, by method, route and status code.",
		}, []string{"method", "route", "code"})),
		duration: telemetry.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "rest_request_duration_seconds",
			Help:    "Time from a REST request's arrival to the end of its response, by method and route; a stream counts until it ends.",
			Buckets: telemetry.LatencyBuckets,
		}, []string{"method", "route"})),
		inFlight: telemetry.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "rest_requests_in_flight",
			Help: "REST requests being answered now, streams included.",
		})),
	}
}

// routes are the gateway's paths; any other is "unmatched".
var routes = map[string]bool{"/v1/hello": true, "/v1/items": true, streamPath: true, openAPIPath: true}

func route(r *http.Request) string {
	if routes[r.URL.Path] {
		return r.URL.Path
	}
	return "unmatched"
}

// methodLabel keeps the method label to the standard methods: a client may
// send anything.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// traced starts a span per request, continuing the caller's trace from its
// traceparent header: the in-process call has no gRPC span of its own.
func traced(next http.Handler, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(next, "rest",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(telemetry.Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			return methodLabel(r.Method) + " " + route(r)
		}),
	)
}

// observe runs a request with panic recovery and logs it in one line at
// info level, as the gRPC server logs each call: the REST calls bypass the
// gRPC server's interceptors, its panic recovery and call log among them.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if s.metrics != nil {
			s.metrics.inFlight.Inc()
			defer s.metrics.inFlight.Dec()
		}
		tracked := &headerTracker{ResponseWriter: w}
		defer func() {
			p := recover()
			abort := p == http.ErrAbortHandler
			if p != nil && !abort {
				s.log.Error("panic in REST handler", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
				if tracked.code == 0 {
					_, m := runtime.MarshalerForRequest(s.mux, r)
					runtime.DefaultHTTPErrorHandler(r.Context(), s.mux, m, tracked, r, status.Error(codes.Internal, "internal error"))
				} else {
					// Part of the answer is out: only cutting the
					// connection tells the client it is incomplete.
					abort = true
				}
			}
			s.record(r, tracked.status(), start)
			if abort {
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(tracked, r)
	})
}

// record counts, times and logs a request once it has been answered, a whole
// stream included.
func (s *Server) record(r *http.Request, code int, start time.Time) {
	elapsed := time.Since(start)
	if s.metrics != nil {
		method, rt := methodLabel(r.Method), route(r)
		s.metrics.requests.WithLabelValues(method, rt, strconv.Itoa(code)).Inc()
		s.metrics.duration.WithLabelValues(method, rt).Observe(elapsed.Seconds())
	}
	ctx := r.Context()
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs,
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", code),
		slog.Duration("duration", elapsed),
		slog.String("peer", r.RemoteAddr))
	if id := telemetry.TraceID(ctx); id != "" {
		attrs = append(attrs, slog.String("trace_id", id))
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "REST call", attrs...)
}

// headerTracker notes the status of a response once it has started.
type headerTracker struct {
	http.ResponseWriter
	code int
}

func (t *headerTracker) WriteHeader(code int) {
	if t.code == 0 {
		t.code = code
	}
	t.ResponseWriter.WriteHeader(code)
}

func (t *headerTracker) Write(b []byte) (int, error) {
	if t.code == 0 {
		t.code = http.StatusOK
	}
	return t.ResponseWriter.Write(b)
}

// status is what the client got: net/http sends 200 for an empty answer.
func (t *headerTracker) status() int {
	if t.code == 0 {
		return http.StatusOK
	}
	return t.code
}

// Unwrap lets http.ResponseController reach the connection's Flush and
// SetWriteDeadline.
func (t *headerTracker) Unwrap() http.ResponseWriter { return t.ResponseWriter }
