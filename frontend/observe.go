package frontend

import (
	"net/http"
	"strings"

	"github.com/grpcplay/grpcplay/internal/telemetry"
)

// unmatchedRoute labels requests no route took, such as 404s and 405s.
const unmatchedRoute = "unmatched"

// notFoundPattern is the catch-all route; its requests are unmatched.
const notFoundPattern = "GET /"

// route turns the pattern the mux matched into a metric and log label:
// patterns, never raw paths, so that a scan of random URLs cannot grow the
// number of series.
func route(r *http.Request) string {
	if r.Pattern == "" || r.Pattern == notFoundPattern {
		return unmatchedRoute
	}
	_, path, _ := strings.Cut(r.Pattern, " ")
	return path
}

// quietRoutes are polled by machines every few seconds: their access lines
// are debug, so that info shows what people and programs asked for. So are
// the requests no route took (404s, 405s, the mux's redirects of unclean
// paths): a scan of URLs makes one each.
var quietRoutes = []string{"/healthz", "/readyz", "/metrics", unmatchedRoute}

// observe counts, times, traces and logs each request: one line per
// request, a whole live stream included.
func (s *Server) observe(next http.Handler) http.Handler {
	return telemetry.ObserveHTTP(telemetry.HTTPConfig{
		Metrics:        s.cfg.Metrics,
		Prefix:         "http",
		RequestsHelp:   "HTTP requests the frontend answered, by method, route pattern and status code.",
		DurationHelp:   "Time from a request's arrival to the end of its response, by method and route pattern; a live stream counts until it ends.",
		InFlightHelp:   "HTTP requests being answered now, live streams included.",
		Route:          route,
		Logger:         s.log,
		LogMessage:     "request",
		QuietRoutes:    quietRoutes,
		TracerProvider: s.cfg.TracerProvider,
		Operation:      "frontend",
		// The span is named after the route once the mux has matched one.
		SpanName: func(r *http.Request) string {
			if r.Pattern != "" {
				return r.Pattern
			}
			return r.Method
		},
	})(next)
}
