package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/gateway"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// Requests beyond MaxInFlight, of any route, get 429 at once; the server
// serves again as soon as a slot frees.
func TestTooManyRequestsInFlight(t *testing.T) {
	r := start(t, gateway.Config{MaxInFlight: 2})
	answered := make(chan int, 2)
	for range 2 {
		go func() {
			resp, _ := r.get("/v1/hello?name=hold")
			answered <- resp.StatusCode
		}()
	}
	<-r.svc.held
	<-r.svc.held
	for _, path := range []string{"/v1/items?length=1", "/v1/hello?name=x", "/v1/stream?length=1", "/v1/openapi.json"} {
		resp, body := r.get(path)
		var st spb.Status
		decode(t, body, &st)
		if resp.StatusCode != http.StatusTooManyRequests || codes.Code(st.GetCode()) != codes.ResourceExhausted ||
			!strings.Contains(st.GetMessage(), "too many requests in flight (the limit is 2)") || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("%s with 2 requests in flight: %d, Retry-After %q, %s; want 429 RESOURCE_EXHAUSTED and Retry-After 1",
				path, resp.StatusCode, resp.Header.Get("Retry-After"), body)
		}
	}
	close(r.svc.release)
	for range 2 {
		if code := <-answered; code != http.StatusOK {
			t.Errorf("a held request got %d, want 200", code)
		}
	}
	// A slot frees as the handler returns, just after the client has its
	// answer.
	testkit.Eventually(t, 10*time.Second, func() error {
		if resp, body := r.get("/v1/items?length=1"); resp.StatusCode != http.StatusOK {
			return fmt.Errorf("after the held requests ended: %d %s", resp.StatusCode, body)
		}
		return nil
	})
}

// The gateway refuses HEAD like any method but GET: grpc-gateway routes
// by method, and a HEAD of /v1/items would run the whole call for no body.
func TestHeadAndOptionsAreNotAllowed(t *testing.T) {
	r := start(t, gateway.Config{})
	for _, method := range []string{http.MethodHead, http.MethodOptions} {
		resp := r.do(context.Background(), method, "/v1/items?length=1")
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
			t.Errorf("%s: %d, Allow %q; want 405 and Allow: GET", method, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
}

// failing answers a hello to "N" with gRPC code N.
type failing struct{ *backend.Service }

func (failing) SayHello(_ context.Context, req *api.HelloRequest) (*api.Hello, error) {
	n, err := strconv.Atoi(req.GetName())
	if err != nil {
		return nil, err
	}
	return nil, grpcstatus.Error(codes.Code(n), "failing on purpose")
}

// The REST face keeps grpc-gateway's status for each code (see errors.go):
// this pins it for every code the service and the gateway answer, so that
// a change of library that changes one is noticed.
func TestHTTPStatusOfEachCode(t *testing.T) {
	h := gateway.New(gateway.Config{}, failing{backend.NewService(backend.DefaultLimits)}).Handler()
	for code, want := range map[codes.Code]int{
		codes.InvalidArgument:   http.StatusBadRequest,          // bad input
		codes.NotFound:          http.StatusNotFound,            // unknown path
		codes.ResourceExhausted: http.StatusTooManyRequests,     // over MaxInFlight or MaxStreams
		codes.Canceled:          499,                            // the client went away
		codes.DeadlineExceeded:  http.StatusGatewayTimeout,      // Grpc-Timeout or the default passed
		codes.Unavailable:       http.StatusServiceUnavailable,  // shutting down
		codes.Unimplemented:     http.StatusNotImplemented,      // (405 for a wrong method is set by hand)
		codes.Internal:          http.StatusInternalServerError, // a panic
		codes.Unknown:           http.StatusInternalServerError, // an error without a gRPC code
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, fmt.Sprintf("/v1/hello?name=%d", code), nil))
		if rec.Code != want {
			t.Errorf("%v: status %d, want %d", code, rec.Code, want)
		}
	}
}

// A client that asks for a large reply and never reads it holds its slot
// (and the reply's memory) for ReplyWriteTimeout once the reply is ready:
// not for the call's deadline, here 10 minutes.
func TestStalledReaderFreesItsSlot(t *testing.T) {
	// 300,000 items are about 10 MB of JSON, more than the kernel's
	// socket buffers hold, so the write blocks.
	r := startLimited(t, gateway.Config{MaxInFlight: 1, Timeout: 10 * time.Minute, ReplyWriteTimeout: time.Second}, backend.Limits{MaxItems: 300_000, MaxStreamItems: 1, MaxNameBytes: 64})
	defer stallOn(t, r, "/v1/items?length=300000").Close()
	poll := func(want int, within time.Duration) {
		t.Helper()
		testkit.Eventually(t, within, func() error {
			resp, body := r.get("/v1/hello?name=x")
			return testkit.Failf(resp.StatusCode == want, "still %d %s; want %d", resp.StatusCode, body, want)
		})
	}
	// The stalled request holds the slot while its reply is made and for a
	// second after; making 10 MB of JSON takes seconds under -race on a
	// busy machine, hence the slack in both waits.
	poll(http.StatusTooManyRequests, time.Minute)
	// Far below the 10 minutes the call's deadline would allow.
	poll(http.StatusOK, 3*time.Minute)
}

// getAll calls share a budget of items: one that does not fit waits for
// room, and gets 504 if its deadline comes first; one that fits runs.
func TestReplyItemsBudget(t *testing.T) {
	r := start(t, gateway.Config{MaxReplyItems: 10_000})
	answered := make(chan int, 1)
	go func() {
		resp, _ := r.get(fmt.Sprintf("/v1/items?length=%d", holdLength))
		answered <- resp.StatusCode
	}()
	<-r.svc.held // 7,777 of the 10,000 items are taken until release
	resp, body := r.get("/v1/items?length=5000", "Grpc-Timeout", "200m")
	var st spb.Status
	decode(t, body, &st)
	if resp.StatusCode != http.StatusGatewayTimeout || codes.Code(st.GetCode()) != codes.DeadlineExceeded {
		t.Errorf("5,000 more items with 200ms to wait: %d %s; want 504 DEADLINE_EXCEEDED", resp.StatusCode, body)
	}
	for _, path := range []string{"/v1/items?length=2000", "/v1/hello?name=x", "/v1/stream?length=5000"} {
		if resp, body := r.get(path); resp.StatusCode != http.StatusOK {
			t.Errorf("%s, which fits or draws on no budget: %d %s", path, resp.StatusCode, body)
		}
	}
	// Once the held call ends, a call of that size gets its answer (waiting
	// for room if it comes first).
	waited := make(chan int, 1)
	go func() {
		resp, _ := r.get("/v1/items?length=5000")
		waited <- resp.StatusCode
	}()
	close(r.svc.release)
	if code := <-answered; code != http.StatusOK {
		t.Errorf("the held call got %d", code)
	}
	if code := <-waited; code != http.StatusOK {
		t.Errorf("the call that waited for room got %d, want 200", code)
	}
}

// stallOn sends a GET of path and never reads the answer.
func stallOn(t *testing.T, r *rig, path string) net.Conn {
	t.Helper()
	dialer := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	conn, err := dialer.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: gateway\r\n\r\n"); err != nil {
		conn.Close()
		t.Fatal(err)
	}
	return conn
}

// A reply that a client does not read holds its slot, but not the item
// budget: that is for making replies, and this one is made.
func TestStalledReaderDoesNotHoldTheItemBudget(t *testing.T) {
	r := startLimited(t, gateway.Config{MaxReplyItems: 300_000, ReplyWriteTimeout: 2 * time.Minute},
		backend.Limits{MaxItems: 300_000, MaxStreamItems: 1, MaxNameBytes: 64})
	defer stallOn(t, r, "/v1/items?length=300000").Close()
	// Until the stalled reply is written out, this call may wait in vain
	// (504); then it fits.
	// Each try makes 10 MB of JSON: slow under the race detector.
	testkit.Eventually(t, time.Minute, func() error {
		resp, body := r.get("/v1/items?length=300000", "Grpc-Timeout", "2S")
		return testkit.Failf(resp.StatusCode == http.StatusOK, "a call of the whole budget while a reply stalls: %d %.200s", resp.StatusCode, body)
	})
}
