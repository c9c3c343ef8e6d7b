package gateway

import (
	"context"
	"net/http"
	"sync"

	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
)

// Over HTTP/1.1 each request in flight holds a connection and a goroutine,
// and a unary one its whole answer (about 3.5 MB of JSON for 100,000 items)
// until the client has read it. Nothing in net/http bounds them, so the
// gateway does: at most MaxInFlight requests at once, and of those at most
// MaxStreams streams, so that streams, which last minutes, cannot take every
// slot from the short calls. A request over either limit is refused at once
// rather than queued: queued requests would hold connections all the same.
//
// The count alone does not bound memory: a getAll reply of 100,000 items
// takes about 30 MB while it is made and marshalled (measured: 40 such calls
// at once took the process to 1.3 GB), so 256 of them could take 8 GB. So
// the making of those replies also draws on a budget of MaxReplyItems items,
// and a call that does not fit waits for room, up to its deadline, rather
// than being refused: a load of large calls then runs a few at a time, which
// is all two cores can do anyway, in bounded memory, and bench's 50 workers
// asking for 100,000 items each still get their answers. The waiters are
// bounded by MaxInFlight. Once written out, a reply is only its JSON (3.5 MB
// for 100,000 items), held for ReplyWriteTimeout at most.
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

// budgeted gives a getAll request a replyBudget, which the call itself
// fills from the length it was parsed with (see budgetedItems), so that the
// budget counts what the call will make whatever way its parameters came;
// the items are given back when the reply, marshalled, starts to be
// written: a client that stops reading does not hold them.
func (s *Server) budgeted(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != itemsPath {
			next.ServeHTTP(w, r)
			return
		}
		b := &replyBudget{items: s.replyItems}
		defer b.release()
		ctx := context.WithValue(r.Context(), replyBudgetKey{}, b)
		next.ServeHTTP(&releasingWriter{ResponseWriter: w, release: b.release}, r.WithContext(ctx))
	})
}

type replyBudgetKey struct{}

// replyBudget is the share of MaxReplyItems one getAll call holds.
type replyBudget struct {
	items *semaphore.Weighted
	mu    sync.Mutex
	held  int64
}

// acquire waits until n items fit the budget, or ctx ends.
func (b *replyBudget) acquire(ctx context.Context, n int64) error {
	if err := b.items.Acquire(ctx, n); err != nil {
		return status.FromContextError(err).Err()
	}
	b.mu.Lock()
	b.held += n
	b.mu.Unlock()
	return nil
}

func (b *replyBudget) release() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.held > 0 {
		b.items.Release(b.held)
		b.held = 0
	}
}

// budgetedItems takes req's items from the call's replyBudget before the
// call makes them. An invalid length is refused by the call itself, at
// once, so it costs one item.
func (s *Server) budgetedItems(ctx context.Context, req *api.ApiRequest) error {
	b, ok := ctx.Value(replyBudgetKey{}).(*replyBudget)
	if !ok {
		return nil // a call not made through budgeted, such as a test's
	}
	return b.acquire(ctx, min(max(int64(req.GetLength()), 1), s.cfg.MaxReplyItems))
}

// releasingWriter calls release on the first Write: by then the reply is
// its marshalled bytes, and the items and their copies are garbage.
type releasingWriter struct {
	http.ResponseWriter
	release func()
}

func (w *releasingWriter) Write(b []byte) (int, error) {
	w.release()
	return w.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *releasingWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// itemsPath calls getAll, whose replies the budget bounds.
var itemsPath = routeOf("getAll")
