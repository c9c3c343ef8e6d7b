package gateway

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Every error response is grpc-gateway's: the status code that
// runtime.HTTPStatusFromCode gives the gRPC code (InvalidArgument 400,
// DeadlineExceeded 504, ...) and a JSON google.rpc.Status body,
// {"code":3,"message":"...","details":[]}.
//
// This is the second error-to-HTTP map in the project, on purpose. The
// frontend's, frontend.HTTPStatus, is a web page's proxy: an Internal or
// Unknown from the backend is a 502 there, a failure upstream of it. The
// gateway is the backend's own REST face, where Internal is the server's
// own 500, and its clients expect grpc-gateway's mapping, the one every
// grpc-gateway service and the google.api.http conventions use. So the REST
// face keeps the library's map, unchanged; TestHTTPStatusOfEachCode pins it
// for every code this service answers.

// fail answers err as grpc-gateway answers a failed call.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	_, m := runtime.MarshalerForRequest(s.mux, r)
	runtime.HTTPError(r.Context(), s.mux, m, w, r, err)
}

// routingError keeps the HTTP status of a routing failure. grpc-gateway's
// default turns 405 into Unimplemented and so answers 501; a client that
// used the wrong method should learn that, with the one method allowed.
func routingError(ctx context.Context, mux *runtime.ServeMux, m runtime.Marshaler, w http.ResponseWriter, r *http.Request, httpStatus int) {
	var err error
	switch httpStatus {
	case http.StatusNotFound:
		// Quoted: a path need not be UTF-8, and a Status message must be.
		err = status.Errorf(codes.NotFound, "no such path: %q", r.URL.Path)
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
