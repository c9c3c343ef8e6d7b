package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/api"
)

// timeoutHeader is gRPC's deadline header, which grpc-gateway also reads
// from HTTP clients: "100m" is 100 milliseconds.
const timeoutHeader = "Grpc-Timeout"

// withDeadline gives every request a deadline: the client's Grpc-Timeout,
// capped at MaxTimeout, or else the default of its kind of call. It removes
// the header once applied, so that grpc-gateway does not apply it again
// uncapped. The response's write deadline follows the call's deadline.
func (s *Server) withDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		timeout := s.cfg.Timeout
		if routes[r.URL.Path].stream {
			timeout = s.cfg.StreamTimeout
		}
		if v := r.Header.Get(timeoutHeader); v != "" {
			asked, err := parseTimeout(v)
			if err != nil {
				s.badRequest(w, r, err.Error())
				return
			}
			timeout = min(asked, s.cfg.MaxTimeout)
			r.Header.Del(timeoutHeader)
		}
		ctx, cancel := context.WithTimeout(r.Context(), timeout)
		defer cancel()
		// Not every ResponseWriter has a connection (httptest's recorder);
		// the server's WriteTimeout then stays in force.
		_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(timeout + writeMargin))
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// validUTF8 refuses a query that is not UTF-8. Proto strings must be: the
// service would take such a name, and its answer would then fail to encode,
// a 500 for what is the client's mistake. (gRPC refuses such a request when
// it decodes it.)
func (s *Server) validUTF8(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !utf8.ValidString(r.URL.RawQuery) {
			s.badRequest(w, r, "the query string is not valid UTF-8")
			return
		}
		if query, err := url.QueryUnescape(r.URL.RawQuery); err == nil && !utf8.ValidString(query) {
			s.badRequest(w, r, "a query parameter is not valid UTF-8 once unescaped")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func (s *Server) badRequest(w http.ResponseWriter, r *http.Request, msg string) {
	s.fail(w, r, status.Error(codes.InvalidArgument, msg))
}

// replyDeadline runs once a unary call's reply is ready, just before it is
// written: from then on, writing it may take ReplyWriteTimeout, not what is
// left of the call's deadline (up to MaxTimeout), so that a client that
// stopped reading frees the reply's memory and its slot soon.
//
// It also answers DEADLINE_EXCEEDED for a call whose deadline passed while
// it ran, as a gRPC client would see it, rather than a late success: the
// service does not check its context in a unary call, since each is quick,
// so an expired Grpc-Timeout would otherwise go unnoticed.
func (s *Server) replyDeadline(ctx context.Context, w http.ResponseWriter, _ proto.Message) error {
	if err := ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.ReplyWriteTimeout))
	return nil
}

// checkedService is the service as the REST face calls it: a getAll's
// items must fit the reply budget (limit.go) before the call makes them.
// Every other RPC is the service's own, unchanged.
type checkedService struct {
	api.ApiServer
	s *Server
}

func (d checkedService) GetAll(ctx context.Context, req *api.ApiRequest) (*api.Items, error) {
	if err := d.s.budgetedItems(ctx, req); err != nil {
		return nil, err
	}
	return d.ApiServer.GetAll(ctx, req)
}

// parseTimeout reads a Grpc-Timeout value as gRPC defines it: at most 8
// digits and a unit, H M S m u or n.
func parseTimeout(v string) (time.Duration, error) {
	bad := fmt.Errorf("invalid %s header %q: want at most 8 digits and a unit H, M, S, m, u or n, such as 500m", timeoutHeader, v)
	if len(v) < 2 || len(v) > 9 {
		return 0, bad
	}
	digits, unitChar := v[:len(v)-1], v[len(v)-1]
	var unit time.Duration
	switch unitChar {
	case 'H':
		unit = time.Hour
	case 'M':
		unit = time.Minute
	case 'S':
		unit = time.Second
	case 'm':
		unit = time.Millisecond
	case 'u':
		unit = time.Microsecond
	case 'n':
		unit = time.Nanosecond
	default:
		return 0, bad
	}
	n, err := strconv.ParseUint(digits, 10, 32)
	if err != nil {
		return 0, bad
	}
	// 99,999,999 hours overflows a Duration; anything that long is capped
	// anyway.
	if n > uint64(time.Duration(1<<63-1)/unit) {
		return time.Duration(1<<63 - 1), nil
	}
	return time.Duration(n) * unit, nil
}
