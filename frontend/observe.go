package frontend

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"

	"github.com/grpcplay/grpcplay/internal/telemetry"
)

// httpMetrics are the frontend's request metrics. Routes are the mux's
// patterns, never raw paths, so that a scan of random URLs cannot grow the
// number of series.
type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

func newHTTPMetrics(reg *prometheus.Registry) *httpMetrics {
	return &httpMetrics{
		requests: telemetry.Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "http_requests_total",
			Help: "HTTP requests the frontend answered, by method, route pattern and status code.",
		}, []string{"method", "route", "code"})),
		duration: telemetry.Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_request_duration_seconds",
			Help:    "Time from a request's arrival to the end of its response, by method and route pattern; a live stream counts until it ends.",
			Buckets: telemetry.LatencyBuckets,
		}, []string{"method", "route"})),
		inFlight: telemetry.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_requests_in_flight",
			Help: "HTTP requests being answered now, live streams included.",
		})),
	}
}

// unmatchedRoute labels requests no route took, such as 404s and 405s.
const unmatchedRoute = "unmatched"

// notFoundPattern is the catch-all route; its requests are unmatched.
const notFoundPattern = "GET /"

// route turns the pattern the mux matched into a metric and log label.
func route(r *http.Request) string {
	if r.Pattern == "" || r.Pattern == notFoundPattern {
		return unmatchedRoute
	}
	_, path, _ := strings.Cut(r.Pattern, " ")
	return path
}

// methodLabel keeps the method label to the standard methods: any other is
// OTHER, since a client may send anything.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

// quietRoutes are polled by machines every few seconds: their access lines
// are debug, so that info shows what people and programs asked for.
var quietRoutes = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// observe counts, times and logs each request once it has been answered:
// one line per request, a whole live stream included. The mux sets the
// route on r, which is why next must get r itself and not a copy.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.metrics == nil && !s.log.Enabled(r.Context(), slog.LevelDebug) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		if s.metrics != nil {
			s.metrics.inFlight.Inc()
			defer s.metrics.inFlight.Dec()
		}
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		elapsed := time.Since(start)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		rt := route(r)
		if s.metrics != nil {
			method := methodLabel(r.Method)
			s.metrics.requests.WithLabelValues(method, rt, strconv.Itoa(status)).Inc()
			s.metrics.duration.WithLabelValues(method, rt).Observe(elapsed.Seconds())
		}
		level := slog.LevelInfo
		if quietRoutes[rt] {
			level = slog.LevelDebug
		}
		if !s.log.Enabled(r.Context(), level) {
			return
		}
		attrs := make([]slog.Attr, 0, 6)
		attrs = append(attrs,
			slog.String("method", r.Method),
			slog.String("route", rt),
			slog.Int("status", status),
			slog.Duration("duration", elapsed),
			slog.String("peer", r.RemoteAddr))
		if id := telemetry.TraceID(r.Context()); id != "" {
			attrs = append(attrs, slog.String("trace_id", id))
		}
		s.log.LogAttrs(r.Context(), level, "request", attrs...)
	})
}

// statusRecorder notes the status a handler sends. Unwrap lets
// http.ResponseController reach the connection, for the live view's
// flushes and write deadlines.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

func (w *statusRecorder) Flush() {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// traced starts a span per request, continuing the caller's trace from its
// traceparent header. The span is named after the route once the mux has
// matched one.
func traced(next http.Handler, tp trace.TracerProvider) http.Handler {
	return otelhttp.NewHandler(next, "frontend",
		otelhttp.WithTracerProvider(tp),
		otelhttp.WithPropagators(telemetry.Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		}),
	)
}
