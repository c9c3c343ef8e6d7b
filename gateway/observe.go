package gateway

import (
	"net/http"
	"runtime/debug"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/internal/telemetry"
)

// route labels a request with its path when the path is one of the
// gateway's (routes.go); any other is "unmatched", so that a scan of random
// URLs cannot grow the number of series.
func route(r *http.Request) string {
	if _, ok := routes[r.URL.Path]; ok || r.URL.Path == openAPIPath {
		return r.URL.Path
	}
	return "unmatched"
}

// observe runs a request with panic recovery, counts and times it in the
// backend's registry next to its grpc_server_* metrics, traces it, and logs
// it in one line at info level, as the gRPC server logs each call: the REST
// calls bypass the gRPC server's interceptors, its panic recovery and call
// log among them. The in-process call has no gRPC span of its own.
func (s *Server) observe(next http.Handler) http.Handler {
	return telemetry.ObserveHTTP(telemetry.HTTPConfig{
		Metrics:      s.cfg.Metrics,
		Prefix:       "rest",
		RequestsHelp: "REST/JSON requests the gateway answered, by method, route and status code.",
		DurationHelp: "Time from a REST request's arrival to the end of its response, by method and route; a stream counts until it ends.",
		InFlightHelp: "REST requests being answered now, streams included.",
		Route:        route,
		Logger:       s.log,
		LogMessage:   "REST call",
		LogPath:      true,
		// A scan of URLs makes one unmatched request each.
		QuietRoutes:    []string{"unmatched"},
		TracerProvider: s.cfg.TracerProvider,
		Operation:      "rest",
		Recover:        s.recoverPanic,
	})(next)
}

// recoverPanic answers Internal for a handler's panic, or cuts the
// connection if part of the answer is already out: only that tells the
// client it is incomplete.
func (s *Server) recoverPanic(w http.ResponseWriter, r *http.Request, p any, started bool) (abort bool) {
	s.log.Error("panic in REST handler", "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
	if started {
		return true
	}
	_, m := runtime.MarshalerForRequest(s.mux, r)
	runtime.DefaultHTTPErrorHandler(r.Context(), s.mux, m, w, r, status.Error(codes.Internal, "internal error"))
	return false
}
