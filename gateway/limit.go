package gateway

import (
	"net/http"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Over HTTP/1.1 each request in flight holds a connection and a goroutine,
// and a unary one its whole answer (about 3.5 MB of JSON for 100,000 items)
// until the client has read it. Nothing in net/http bounds them, so the
// gateway does: at most MaxInFlight requests at once, and of those at most
// MaxStreams streams, so that streams, which last minutes, cannot take every
// slot from the short calls. A request over either limit is refused at once
// rather than queued: queued requests would hold connections all the same.
//
// The refusal is 429 RESOURCE_EXHAUSTED with Retry-After: 1: gRPC's code for
// a server-side limit, and grpc-gateway's status for it. 503 UNAVAILABLE would
// also say "retry", but here it means shutting down, and a load balancer may
// take it for a dead backend. (The frontend answers 503 for its own live
// stream cap; that is its proxy's view, see errors.go.)

// limited refuses a request when MaxInFlight requests are in flight.
func (s *Server) limited(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case s.inFlight <- struct{}{}:
			defer func() { <-s.inFlight }()
		default:
			s.refuse(w, r, "too many requests in flight (the limit is %d); retry later", s.cfg.MaxInFlight)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) refuse(w http.ResponseWriter, r *http.Request, format string, limit int) {
	w.Header().Set("Retry-After", "1")
	s.fail(w, r, status.Errorf(codes.ResourceExhausted, format, limit))
}
