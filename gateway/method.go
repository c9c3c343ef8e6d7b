package gateway

import (
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// getOnly answers 405 with Allow: GET to any method but GET, before any
// limit, deadline or handler sees the request. Every route reads only its
// URL's query, and a GET's body is never parsed; grpc-gateway's generated
// handlers, though, call ParseForm, which for POST, PUT and PATCH reads a
// urlencoded body into the same form as the query: without this, a POST
// was answered as a GET whose parameters no check before the handler saw.
// HEAD is refused too: no route has a body worth describing without
// sending it, and a HEAD of /v1/items would still make the reply.
func (s *Server) getOnly(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			s.fail(w, r, &runtime.HTTPStatusError{
				HTTPStatus: http.StatusMethodNotAllowed,
				Err:        status.Errorf(codes.Unimplemented, "method %s is not allowed; use GET", r.Method),
			})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// nosniff tells browsers to take each reply for the JSON its Content-Type
// says, never for a page or a script: a reply echoes the caller's input (a
// name, an unknown parameter), which must not become markup.
func nosniff(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Content-Type-Options", "nosniff")
		next.ServeHTTP(w, r)
	})
}
