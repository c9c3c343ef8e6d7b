package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// inputError is a request the frontend refuses before calling the backend.
// Its problems are written for the user.
type inputError struct {
	problems []string
}

func (e *inputError) Error() string {
	return strings.Join(e.problems, "; ")
}

// errNotFound is a request for a path the frontend does not serve.
var errNotFound = errors.New("no such page")

// errTooManyLiveStreams refuses a live stream beyond Config.MaxLiveStreams.
var errTooManyLiveStreams = errors.New("too many live streams are open")

// panicError is a panic caught in one of a request's goroutines. Left alone,
// such a panic would end the whole process, not just the request.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("panic: %v\n%s", e.value, e.stack)
}

// recovered runs f and turns its panic into a *panicError.
func recovered(f func() error) func() error {
	return func() (err error) {
		defer func() {
			if p := recover(); p != nil {
				err = &panicError{value: p, stack: debug.Stack()}
			}
		}()
		return f()
	}
}

// statusClientClosedRequest is nginx's status for a client that left before
// its answer: nobody sees it, and it is no failure of the frontend's.
const statusClientClosedRequest = 499

// HTTPStatus maps an error of a request to the status the user gets. It is
// the one place that decides this, so the page, the live view and the logs
// agree.
func HTTPStatus(err error) int {
	var input *inputError
	var panicked *panicError
	var soon *tooSoonError
	var forbidden *forbiddenError
	switch {
	case err == nil:
		return http.StatusOK
	case errors.As(err, &forbidden):
		return http.StatusForbidden
	case errors.As(err, &soon):
		return http.StatusTooManyRequests
	case errors.Is(err, errCompareUnavailable):
		return http.StatusNotImplemented
	case errors.As(err, &panicked):
		return http.StatusInternalServerError
	case errors.As(err, &input):
		return http.StatusBadRequest
	case errors.Is(err, errNotFound):
		return http.StatusNotFound
	case errors.Is(err, errTooManyLiveStreams):
		return http.StatusServiceUnavailable
	case errors.Is(err, context.DeadlineExceeded):
		return http.StatusGatewayTimeout
	case errors.Is(err, context.Canceled):
		return statusClientClosedRequest
	}
	switch status.Code(err) {
	case codes.InvalidArgument, codes.OutOfRange:
		return http.StatusBadRequest
	case codes.DeadlineExceeded:
		return http.StatusGatewayTimeout
	case codes.Canceled:
		return statusClientClosedRequest
	case codes.Unavailable:
		return http.StatusServiceUnavailable
	case codes.ResourceExhausted:
		return http.StatusTooManyRequests
	case codes.Unimplemented:
		return http.StatusNotImplemented
	default:
		return http.StatusBadGateway
	}
}

// userMessages says what went wrong in words for the user. Only messages that
// are about the user's own input are passed through; anything else could
// carry internal details, so it becomes a fixed sentence.
func userMessages(err error, code int) []string {
	var input *inputError
	var soon *tooSoonError
	var forbidden *forbiddenError
	switch {
	case errors.As(err, &input):
		return input.problems
	case errors.As(err, &forbidden):
		return []string{forbidden.message}
	case errors.As(err, &soon):
		return []string{soon.message}
	case errors.Is(err, errCompareUnavailable):
		return []string{"The comparison is not available here: run grpcplay serve, or grpcplay bench in a terminal."}
	case errors.Is(err, errTooManyLiveStreams):
		return []string{"Too many live streams are open right now. Try again in a moment."}
	case code == http.StatusBadRequest:
		return []string{"The backend refused the request: " + status.Convert(err).Message() + "."}
	case code == http.StatusServiceUnavailable:
		return []string{"The backend is unreachable right now. The page recovers by itself when it is back; try again in a moment."}
	case code == http.StatusGatewayTimeout:
		return []string{"The backend is too slow: it did not answer in time. Try again in a moment."}
	case code == http.StatusTooManyRequests:
		return []string{"The backend is busy. Try again in a moment."}
	case code == http.StatusNotImplemented:
		return []string{"The backend does not implement this call."}
	case code == http.StatusNotFound:
		return []string{"There is no page at this address."}
	case code == http.StatusInternalServerError:
		return []string{"Something went wrong in the frontend. It has been logged."}
	default:
		return []string{"The backend failed to answer the request."}
	}
}

// errorTitle is the page heading for a status.
func errorTitle(code int) string {
	switch code {
	case http.StatusBadRequest:
		return "Bad request"
	case http.StatusServiceUnavailable:
		return "Backend unreachable"
	case http.StatusGatewayTimeout:
		return "Backend too slow"
	default:
		return http.StatusText(code)
	}
}

// logFailure records a failed request. Every failure path calls it, so each
// failed request is logged once: at warn when an operator should look (the
// backend failing, a bug), at debug when the client caused it (a 4xx, a
// live stream over the caps), since a client can cause one per request.
func (s *Server) logFailure(r *http.Request, code int, err error) {
	level := slog.LevelWarn
	if code < 500 || errors.Is(err, errTooManyLiveStreams) {
		level = slog.LevelDebug
	}
	s.log.Log(r.Context(), level, "request failed",
		"method", r.Method, "path", r.URL.Path, "status", code, "error", err)
}

// renderError is the one way a request fails with a page: the site's layout
// with a plain message, and the form filled with what the user asked for.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error, form any) {
	code := HTTPStatus(err)
	s.logFailure(r, code, err)
	data := errorData{Status: code, Title: errorTitle(code), Messages: userMessages(err, code)}
	switch f := form.(type) {
	case *pageForm:
		data.PageForm = f
	case *liveForm:
		data.LiveForm = f
	}
	s.render(w, r, code, "error.html", data)
}

// plainError fails a request whose client is a program, not a person, such as
// the EventSource of the live view or a probe.
func (s *Server) plainError(w http.ResponseWriter, r *http.Request, err error) {
	code := HTTPStatus(err)
	s.logFailure(r, code, err)
	http.Error(w, strings.Join(userMessages(err, code), "\n"), code)
}
