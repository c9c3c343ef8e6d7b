package telemetry

import (
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// HTTPConfig describes how ObserveHTTP counts, times, traces and logs the
// requests of one HTTP server.
//
// promhttp's InstrumentHandler* functions are not used: they label methods
// in lower case and name unknown ones "unknown", take labels only from the
// request's context (the route is known from the request once the mux has
// matched it), and each wraps the ResponseWriter once more.
type HTTPConfig struct {
	// Metrics gets <Prefix>_requests_total{method,route,code},
	// <Prefix>_request_duration_seconds{method,route} and
	// <Prefix>_requests_in_flight. nil: no metrics.
	Metrics      *prometheus.Registry
	Prefix       string
	RequestsHelp string
	DurationHelp string
	InFlightHelp string

	// Route labels a request for metrics and logs. It must map to a small
	// fixed set, never to raw paths, so that a scan of random URLs cannot
	// grow the number of series. It is called once the handler returns, so
	// it may read what a mux set on the request, such as r.Pattern.
	Route func(*http.Request) string

	// Logger gets one line per answered request, LogMessage, at info, or at
	// debug for the QuietRoutes and for client errors (4xx). It has method, route (or, with LogPath,
	// path: the raw URL path), status, duration, peer and trace_id when
	// the request is traced. nil: no lines.
	Logger      *slog.Logger
	LogMessage  string
	LogPath     bool
	QuietRoutes []string

	// TracerProvider starts a span per request, continuing the caller's
	// trace from its traceparent header. SpanName names it (default: the
	// method and the Route); Operation is otelhttp's operation name. nil:
	// no spans.
	TracerProvider trace.TracerProvider
	Operation      string
	SpanName       func(*http.Request) string

	// Recover, if set, is called when the handler panics with anything but
	// http.ErrAbortHandler; started tells whether the response has begun.
	// It may write an error answer to w, which the metrics and the log line
	// then count, and returns whether the connection must be cut instead.
	// Without it a panic goes through unrecorded.
	Recover func(w http.ResponseWriter, r *http.Request, panicked any, started bool) (abort bool)
}

type httpMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
	inFlight prometheus.Gauge
}

// ObserveHTTP returns the middleware that cfg describes. Its metrics are
// registered here, once.
func ObserveHTTP(cfg HTTPConfig) func(http.Handler) http.Handler {
	o := &httpObserver{cfg: cfg, log: cfg.Logger, quiet: make(map[string]bool, len(cfg.QuietRoutes))}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	o.minLevel = slog.LevelInfo
	for _, rt := range cfg.QuietRoutes {
		o.quiet[rt] = true
		o.minLevel = slog.LevelDebug
	}
	if reg := cfg.Metrics; reg != nil {
		o.metrics = &httpMetrics{
			requests: Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{
				Name: cfg.Prefix + "_requests_total",
				Help: cfg.RequestsHelp,
			}, []string{"method", "route", "code"})),
			duration: Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
				Name:    cfg.Prefix + "_request_duration_seconds",
				Help:    cfg.DurationHelp,
				Buckets: LatencyBuckets,
			}, []string{"method", "route"})),
			inFlight: Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{
				Name: cfg.Prefix + "_requests_in_flight",
				Help: cfg.InFlightHelp,
			})),
		}
	}
	return func(next http.Handler) http.Handler {
		h := o.observe(next)
		if cfg.TracerProvider != nil {
			h = o.traced(h)
		}
		return h
	}
}

type httpObserver struct {
	cfg      HTTPConfig
	log      *slog.Logger
	metrics  *httpMetrics // nil: metrics off
	quiet    map[string]bool
	minLevel slog.Level // the lowest level a line is logged at
}

// observe counts, times and logs each request once it has been answered:
// one line per request, a whole stream included. A mux sets the route on
// r, which is why next must get r itself and not a copy.
func (o *httpObserver) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if o.metrics == nil && o.cfg.Recover == nil && !o.log.Enabled(r.Context(), o.minLevel) {
			next.ServeHTTP(w, r)
			return
		}
		start := time.Now()
		if o.metrics != nil {
			o.metrics.inFlight.Inc()
			defer o.metrics.inFlight.Dec()
		}
		rec := &statusRecorder{ResponseWriter: w}
		if o.cfg.Recover != nil {
			defer func() {
				p := recover()
				abort := p == http.ErrAbortHandler
				if p != nil && !abort {
					abort = o.cfg.Recover(rec, r, p, rec.status != 0)
				}
				o.record(r, rec.answered(), start)
				if abort {
					panic(http.ErrAbortHandler)
				}
			}()
			next.ServeHTTP(rec, r)
			return
		}
		next.ServeHTTP(rec, r)
		o.record(r, rec.answered(), start)
	})
}

func (o *httpObserver) record(r *http.Request, status int, start time.Time) {
	elapsed := time.Since(start)
	rt := o.cfg.Route(r)
	if o.metrics != nil {
		method := methodLabel(r.Method)
		o.metrics.requests.WithLabelValues(method, rt, strconv.Itoa(status)).Inc()
		o.metrics.duration.WithLabelValues(method, rt).Observe(elapsed.Seconds())
	}
	level := slog.LevelInfo
	if o.quiet[rt] || clientError(status) {
		level = slog.LevelDebug
	}
	ctx := r.Context()
	if !o.log.Enabled(ctx, level) {
		return
	}
	where := slog.String("route", rt)
	if o.cfg.LogPath {
		where = slog.String("path", r.URL.Path)
	}
	attrs := make([]slog.Attr, 0, 6)
	attrs = append(attrs,
		slog.String("method", r.Method),
		where,
		slog.Int("status", status),
		slog.Duration("duration", elapsed),
		slog.String("peer", r.RemoteAddr))
	if id := TraceID(ctx); id != "" {
		attrs = append(attrs, slog.String("trace_id", id))
	}
	LogLine(ctx, o.log, level, o.cfg.LogMessage, attrs...)
}

// clientError is a status that answers the client's own mistake (a 404 of
// a URL scan, a 405, a 400) or its leaving (499): its line is debug, so
// that a client cannot write the log at the rate it sends requests.
func clientError(status int) bool {
	return status >= 400 && status < 500
}

// traced starts a span per request, continuing the caller's trace from its
// traceparent header.
func (o *httpObserver) traced(next http.Handler) http.Handler {
	name := o.cfg.SpanName
	if name == nil {
		name = func(r *http.Request) string { return methodLabel(r.Method) + " " + o.cfg.Route(r) }
	}
	return otelhttp.NewHandler(next, o.cfg.Operation,
		otelhttp.WithTracerProvider(o.cfg.TracerProvider),
		otelhttp.WithPropagators(Propagator),
		otelhttp.WithMeterProvider(metricnoop.NewMeterProvider()),
		otelhttp.WithSpanNameFormatter(func(_ string, r *http.Request) string { return name(r) }),
	)
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

// statusRecorder notes the status a handler sends. Unwrap lets
// http.ResponseController reach the connection, for streams' flushes and
// write deadlines; Flush is there for handlers that look for http.Flusher.
type statusRecorder struct {
	http.ResponseWriter
	status int // 0 until the response has started
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

// FlushError is what http.ResponseController.Flush calls: a stream must
// learn that its client is gone or stalled.
func (w *statusRecorder) FlushError() error {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return http.NewResponseController(w.ResponseWriter).Flush()
}

func (w *statusRecorder) Flush() { _ = w.FlushError() }

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// answered is the status the client got: net/http sends 200 for an empty
// answer.
func (w *statusRecorder) answered() int {
	if w.status == 0 {
		return http.StatusOK
	}
	return w.status
}
