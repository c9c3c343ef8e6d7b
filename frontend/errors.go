package frontend

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// pageError is a failed request as its user sees it: the HTTP status, the
// heading of the error page and the messages, written for the user. The
// frontend's own failures are pageErrors from the start; failure turns any
// other error (the backend's, a deadline, a panic) into one, so that a new
// kind of failure is one value, and the page, the live view and the logs
// agree on it.
type pageError struct {
	status int
	// title is the error page's heading; failure fills it in from the
	// status (titles) when it is empty.
	title    string
	messages []string
	// cause is what the log says, when the messages do not say it all.
	cause error
}

func (e *pageError) Error() string {
	if e.cause != nil {
		return e.cause.Error()
	}
	return strings.Join(e.messages, "; ")
}

func (e *pageError) Unwrap() error { return e.cause }

// badInput is a request the frontend refuses before calling the backend.
func badInput(problems ...string) *pageError {
	return &pageError{status: http.StatusBadRequest, messages: problems}
}

var (
	// errNotFound is a request for a path the frontend does not serve.
	errNotFound = &pageError{status: http.StatusNotFound, cause: errors.New("no such page"),
		messages: []string{"There is no page at this address."}}
	// errTooManyLiveStreams refuses a live stream to a client holding its
	// fair share of Config.MaxLiveStreams.
	errTooManyLiveStreams = &pageError{status: http.StatusTooManyRequests, cause: errors.New("the client holds its share of the live streams"),
		messages: []string{"Your address has its share of the live streams open already. Close one, or try again in a moment."}}
)

// panicError is a panic caught in one of a request's goroutines. Left alone,
// such a panic would end the whole process, not just the request.
type panicError struct {
	value any
	stack []byte
}

func (e *panicError) Error() string {
	return fmt.Sprintf("panic: %v\n%s", e.value, e.stack)
}

// statusClientClosedRequest is nginx's status for a client that left before
// its answer: nobody sees it, and it is no failure of the frontend's.
const statusClientClosedRequest = 499

// HTTPStatus maps an error of a request to the status the user gets.
func HTTPStatus(err error) int { return failure(err).status }

// failure is what the user of a failed request gets. It is the one place
// that decides this. Only messages about the user's own input are passed
// through from the backend; anything else could carry internal details, so
// it becomes a fixed sentence.
func failure(err error) *pageError {
	var own *pageError
	var panicked *panicError
	var f pageError
	switch {
	case err == nil:
		return &pageError{status: http.StatusOK}
	case errors.As(err, &own):
		f = *own
	case errors.As(err, &panicked):
		f = pageError{status: http.StatusInternalServerError, messages: []string{"Something went wrong in the frontend. It has been logged."}}
	case errors.Is(err, context.DeadlineExceeded):
		f = backendFailures[codes.DeadlineExceeded]
	case errors.Is(err, context.Canceled):
		f = backendFailures[codes.Canceled]
	default:
		var ok bool
		if f, ok = backendFailures[status.Code(err)]; !ok {
			f = pageError{status: http.StatusBadGateway, messages: []string{"The backend failed to answer the request."}}
		}
		if f.status == http.StatusBadRequest {
			f.messages = []string{"The backend refused the request: " + status.Convert(err).Message() + "."}
		}
	}
	if f.title == "" {
		f.title = titles[f.status]
	}
	if f.title == "" {
		f.title = http.StatusText(f.status)
	}
	return &f
}

// titles are the error page's headings where http.StatusText would not say
// what happened.
var titles = map[int]string{
	http.StatusBadRequest:         "Bad request",
	http.StatusServiceUnavailable: "Backend unreachable",
	http.StatusGatewayTimeout:     "Backend too slow",
}

// backendFailures are what the user gets for each code of a failed call.
var backendFailures = map[codes.Code]pageError{
	codes.InvalidArgument: {status: http.StatusBadRequest},
	codes.OutOfRange:      {status: http.StatusBadRequest},
	codes.Unavailable: {status: http.StatusServiceUnavailable,
		messages: []string{"The backend is unreachable right now. The page recovers by itself when it is back; try again in a moment."}},
	codes.DeadlineExceeded: {status: http.StatusGatewayTimeout,
		messages: []string{"The backend is too slow: it did not answer in time. Try again in a moment."}},
	codes.ResourceExhausted: {status: http.StatusTooManyRequests, messages: []string{"The backend is busy. Try again in a moment."}},
	codes.Unimplemented:     {status: http.StatusNotImplemented, messages: []string{"The backend does not implement this call."}},
	// A client that left before its answer: nobody sees it, and it is no
	// failure of the frontend's.
	codes.Canceled: {status: statusClientClosedRequest, messages: []string{"The backend failed to answer the request."}},
}

// logFailure records a failed request. Every failure path calls it, so each
// failed request is logged once: at warn when an operator should look (the
// backend failing, a bug), at debug when the client caused it (a 4xx, a
// live stream over the caps), since a client can cause one per request.
// A backend too slow for the page's deadline (504) is at debug too, as on
// the REST face: clients that flood the page, or never read its replies,
// make calls queue past it and cause one per request; the operator sees
// them in the request metrics. A backend gone (503) stays at warn.
func (s *Server) logFailure(r *http.Request, code int, err error) {
	level := slog.LevelWarn
	if code < 500 || code == http.StatusGatewayTimeout || errors.Is(err, errTooManyLiveStreams) {
		level = slog.LevelDebug
	}
	s.log.Log(r.Context(), level, "request failed",
		"method", r.Method, "path", r.URL.Path, "status", code, "error", err)
}

// renderError is the one way a request fails with a page: the site's layout
// with a plain message, and the form filled with what the user asked for.
func (s *Server) renderError(w http.ResponseWriter, r *http.Request, err error, form any) {
	f := failure(err)
	s.logFailure(r, f.status, err)
	data := errorData{Status: f.status, Title: f.title, Messages: f.messages}
	v := view{Title: f.title + " · grpcplay"}
	switch f := form.(type) {
	case *pageForm:
		data.PageForm, v.Nav = f, "page"
	case *liveForm:
		data.LiveForm, v.Nav = f, "live"
	}
	v.Data = data
	s.render(w, r, f.status, "error.html", v)
}

// plainError fails a request whose client is a program, not a person, such as
// the EventSource of the live view or a probe.
func (s *Server) plainError(w http.ResponseWriter, r *http.Request, err error) {
	f := failure(err)
	s.logFailure(r, f.status, err)
	http.Error(w, strings.Join(f.messages, "\n"), f.status)
}
