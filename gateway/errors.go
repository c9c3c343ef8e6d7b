package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Every error response is grpc-gateway's: the status code that
// runtime.HTTPStatusFromCode gives the gRPC code (InvalidArgument 400,
// DeadlineExceeded 504, ...) and a JSON google.rpc.Status body,
// {"code":3,"message":"...","details":[]}.

// routingError keeps the HTTP status of a routing failure. grpc-gateway's
// default turns 405 into Unimplemented and so answers 501; a client that
// used the wrong method should learn that, with the one method allowed.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var err error
	switch httpStatus {
	case http.StatusNotFound:
		err = status.Errorf(codes.NotFound, "no such path: %s", r.URL.Path)
	case http.StatusMethodNotAllowed:
		w.Header().Set("Allow", http.MethodGet)
		err = status.Errorf(codes.Unimplemented, "method %s is not allowed; use GET", r.Method)
	case http.StatusBadRequest:
		err = status.Error(codes.InvalidArgument, "malformed request path")
	default:
		err = status.Error(codes.Internal, http.StatusText(httpStatus))
	}
	runtime.HTTPError(ctx, mux, m, w, r, &runtime.HTTPStatusError{HTTPStatus: httpStatus, Err: err})
}

// logErrors is grpc-gateway's error handler plus a log line: server-side
// failures at warn, the client's own mistakes at debug.
func (s *Server) logErrors(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, err error) {
	s.logFailure(r, err)
	runtime.DefaultHTTPErrorHandler(ctx, mux, m, w, r, err)
}

func (s *Server) logFailure(r *http.Request, err error) {
	code := status.Code(err)
	httpStatus := runtime.HTTPStatusFromCode(code)
	var routing *runtime.HTTPStatusError
	if errors.As(err, &routing) {
		code, httpStatus = status.Code(routing.Err), routing.HTTPStatus
	}
	level := slog.LevelDebug
	if httpStatus >= 500 && code != codes.DeadlineExceeded && code != codes.Unavailable {
		level = slog.LevelWarn
	}
	s.log.Log(r.Context(), level, "REST request failed", "method", r.Method, "path", r.URL.Path, "status", httpStatus, "code", code, "error", err)
}

// observe runs a request with panic recovery and logs it in one line at
// info level, as the gRPC server logs each call: the REST calls bypass the
// gRPC server's interceptors, its panic recovery and call log among them.
func (s *Server) observe(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
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
			s.logRequest(r, tracked.status(), start)
			if abort {
				panic(http.ErrAbortHandler)
			}
		}()
		next.ServeHTTP(tracked, r)
	})
}

func (s *Server) logRequest(r *http.Request, code int, start time.Time) {
	ctx := r.Context()
	if !s.log.Enabled(ctx, slog.LevelInfo) {
		return
	}
	s.log.LogAttrs(ctx, slog.LevelInfo, "REST call",
		slog.String("method", r.Method),
		slog.String("path", r.URL.Path),
		slog.Int("status", code),
		slog.Duration("duration", time.Since(start)),
		slog.String("peer", r.RemoteAddr))
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
