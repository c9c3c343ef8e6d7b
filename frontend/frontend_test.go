package frontend

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// newFrontend serves a frontend for b on a loopback httptest server.
func newFrontend(t testing.TB, cfg Config, b Backend) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(New(cfg, b).Handler())
	t.Cleanup(ts.Close)
	return ts
}

// newStack starts a real backend, a client and a frontend.
func newStack(t testing.TB, cfg Config) (*httptest.Server, *backendtest.Backend) {
	t.Helper()
	b := backendtest.Start(t, backend.Config{})
	return newFrontend(t, cfg, testkit.NewClient(t, b.Addr)), b
}

func TestPageShowsThePostsCalls(t *testing.T) {
	ts, _ := newStack(t, Config{})
	tests := []struct {
		query    string
		greeting string
		items    int
		stream   int
	}{
		{"", "Hello Gonzalo!", 10, 5},
		{"?name=Ada&items=3&stream=2", "Hello Ada!", 3, 2},
		{"?name=%3Cb%3E&items=0&stream=0", "Hello &lt;b&gt;!", 0, 0},
		{"?items=1000&stream=1000", "Hello Gonzalo!", 1000, 1000},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			resp, body := testkit.Get(t, ts.URL+"/"+tt.query)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, body:\n%s", resp.StatusCode, body)
			}
			if got := resp.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
				t.Errorf("Content-Type %q", got)
			}
			if resp.ContentLength != int64(len(body)) {
				t.Errorf("Content-Length %d, body %d bytes: the page should be sent whole, not chunked", resp.ContentLength, len(body))
			}
			if !strings.Contains(body, `<h1 id="greeting">`+tt.greeting+`</h1>`) {
				t.Errorf("greeting %q missing from body:\n%s", tt.greeting, body)
			}
			for id, want := range map[string]int{"all-count": tt.items, "stream-count": tt.stream} {
				if s := fmt.Sprintf(`id="%s">%d items<`, id, want); !strings.Contains(body, s) {
					t.Errorf("%s missing from body", s)
				}
			}
			if got, want := strings.Count(body, `<td class="id">`), tt.items+tt.stream; got != want {
				t.Errorf("%d item rows, want %d", got, want)
			}
			if tt.items > 0 && !strings.Contains(body, fmt.Sprintf(`<td class="id">%d</td><td>name %d</td>`, tt.items, tt.items)) {
				t.Errorf("last item of getAll missing")
			}
		})
	}
}

func TestPageHead(t *testing.T) {
	ts, _ := newStack(t, Config{})
	resp, err := http.Head(ts.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("HEAD / status %d", resp.StatusCode)
	}
	// RFC 9110, section 9.3.2: HEAD answers with the length GET would send.
	if resp.ContentLength <= 0 {
		t.Errorf("HEAD / Content-Length %d, want the page's length", resp.ContentLength)
	}
}

func TestPageRejectsBadValues(t *testing.T) {
	ts, _ := newStack(t, Config{MaxPageItems: 1000})
	long := strings.Repeat("x", 1025)
	tests := []struct {
		name  string
		query url.Values
		want  []string
	}{
		{"items not a number", url.Values{"items": {"abc"}}, []string{`items must be a whole number from 0 to 1000, got &#34;abc&#34;.`}},
		{"items empty", url.Values{"items": {""}}, []string{`items must be a whole number from 0 to 1000, got &#34;&#34;.`}},
		{"items fraction", url.Values{"items": {"1.5"}}, []string{`items must be a whole number`}},
		{"items negative", url.Values{"items": {"-1"}}, []string{"items must be 0 or more, got -1."}},
		{"items too large", url.Values{"items": {"1001"}}, []string{"items must be at most 1000, got 1001."}},
		{"items beyond int32", url.Values{"items": {"99999999999"}}, []string{"items must be at most 1000, got 99999999999."}},
		{"items below int32", url.Values{"items": {"-99999999999"}}, []string{"items must be 0 or more, got -99999999999."}},
		{"stream not a number", url.Values{"stream": {"five"}}, []string{`stream must be a whole number from 0 to 1000, got &#34;five&#34;.`}},
		{"stream negative", url.Values{"stream": {"-5"}}, []string{"stream must be 0 or more, got -5."}},
		{"stream too large", url.Values{"stream": {"5000"}}, []string{"stream must be at most 1000, got 5000."}},
		{"name empty", url.Values{"name": {""}}, []string{"name is empty: enter a name to greet."}},
		{"name too long", url.Values{"name": {long}}, []string{"name is 1025 bytes long; the limit is 1024 bytes."}},
		{"name not UTF-8", url.Values{"name": {"\xff"}}, []string{"name is not valid UTF-8 text."}},
		{"every problem at once", url.Values{"name": {""}, "items": {"x"}, "stream": {"-1"}},
			[]string{"name is empty", "items must be a whole number", "stream must be 0 or more"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := testkit.Get(t, ts.URL+"/?"+tt.query.Encode())
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400", resp.StatusCode)
			}
			for _, want := range tt.want {
				if !strings.Contains(body, want) {
					t.Errorf("body lacks %q:\n%s", want, body)
				}
			}
			// The error page keeps the form, so the user can correct it.
			if !strings.Contains(body, `<form class="card controls" method="get" action="/">`) {
				t.Errorf("error page lacks the form")
			}
		})
	}
}

func TestPageMapsBackendInvalidArgumentTo400(t *testing.T) {
	b := backendtest.Start(t, backend.Config{Limits: backend.Limits{MaxItems: 5}})
	ts := newFrontend(t, Config{}, testkit.NewClient(t, b.Addr))
	resp, body := testkit.Get(t, ts.URL+"/?items=6")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if want := "length 6 is out of range: it must be between 0 and 5"; !strings.Contains(body, want) {
		t.Errorf("body lacks the backend's message %q:\n%s", want, body)
	}
}

// The page's calls are in flight at once: the backend answers none of
// them until all have arrived.
func TestPageCallsAreInFlightTogether(t *testing.T) {
	ts := newFrontend(t, Config{Timeout: 5 * time.Second}, testkit.NewClient(t, backendtest.StartRendezvous(t, len(pageCalls))))
	resp, body := testkit.Get(t, ts.URL+"/")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<h1 id="greeting">Hello Gonzalo!</h1>`) {
		t.Fatalf("status %d, body:\n%s", resp.StatusCode, body)
	}
}

// When several of the page's calls fail, the page shows the first in the
// page's order, whichever reply came first.
func TestPageShowsTheFirstFailureInPageOrder(t *testing.T) {
	b := backendtest.Start(t, backend.Config{Limits: backend.Limits{MaxItems: 5, MaxNameBytes: 3}})
	ts := newFrontend(t, Config{}, testkit.NewClient(t, b.Addr))
	resp, body := testkit.Get(t, ts.URL+"/?name=Gonzalo&items=6&stream=6")
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("status %d, want 400", resp.StatusCode)
	}
	if !strings.Contains(body, "name is 7 bytes long; the limit is 3 bytes") || strings.Contains(body, "length 6") {
		t.Errorf("body should give sayHello's error alone:\n%s", body)
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 200},
		{badInput("bad"), 400},
		{fmt.Errorf("wrapped: %w", badInput()), 400},
		{errNotFound, 404},
		{status.Error(codes.InvalidArgument, "x"), 400},
		{status.Error(codes.OutOfRange, "x"), 400},
		{status.Error(codes.DeadlineExceeded, "x"), 504},
		{context.DeadlineExceeded, 504},
		{fmt.Errorf("call: %w", context.DeadlineExceeded), 504},
		{status.Error(codes.Unavailable, "x"), 503},
		{status.Error(codes.ResourceExhausted, "x"), 429},
		{status.Error(codes.Unimplemented, "x"), 501},
		{status.Error(codes.Internal, "x"), 502},
		{status.Error(codes.Unknown, "x"), 502},
		{status.Error(codes.Canceled, "x"), 499},
		{context.Canceled, 499},
		{status.Error(codes.PermissionDenied, "x"), 502},
		{errors.New("plain"), 502},
	}
	for _, tt := range tests {
		if got := HTTPStatus(tt.err); got != tt.want {
			t.Errorf("HTTPStatus(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

func TestErrorMessagesHideInternals(t *testing.T) {
	secret := "dial tcp 10.0.0.7:50051: secret detail"
	for _, code := range []codes.Code{codes.Unavailable, codes.DeadlineExceeded, codes.Internal, codes.ResourceExhausted, codes.Unimplemented} {
		err := status.Error(code, secret)
		msg := strings.Join(failure(err).messages, " ")
		if strings.Contains(msg, "secret") || msg == "" {
			t.Errorf("%v: message %q", code, msg)
		}
	}
}

func TestHealthz(t *testing.T) {
	// No backend at all: liveness does not depend on it.
	ts := newFrontend(t, Config{}, &blockingBackend{})
	resp, body := testkit.Get(t, ts.URL+"/healthz")
	if resp.StatusCode != http.StatusOK || body != "ok\n" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
}

func TestReadyz(t *testing.T) {
	ts, b := newStack(t, Config{})
	if resp, body := testkit.Get(t, ts.URL+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("readyz with backend up: %d %q", resp.StatusCode, body)
	}
	b.Stop(5 * time.Second)
	start := time.Now()
	resp, body := testkit.Get(t, ts.URL+"/readyz")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("readyz with backend down: %d %q", resp.StatusCode, body)
	}
	// Its own deadline is readyTimeout; the page's (5s) is the one it must
	// not wait for, and the bound leaves a busy machine the difference.
	if d := time.Since(start); d > DefaultConfig.Timeout {
		t.Errorf("readyz took %v, its deadline is %v", d, readyTimeout)
	}
}

// freeAddr returns a loopback address that nothing listens on.
// A refused connection is answered at once with 503, not after the page's
// deadline, which would be 504.
func TestPageBackendDown(t *testing.T) {
	ts := newFrontend(t, Config{Timeout: time.Minute}, testkit.NewClient(t, testkit.FreeAddr(t)))
	resp, body := testkit.Get(t, ts.URL+"/")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("status %d, want 503:\n%s", resp.StatusCode, body)
	}
	if !strings.Contains(body, "The backend is unreachable right now.") {
		t.Errorf("body lacks the plain message:\n%s", body)
	}
	if strings.Contains(body, "127.0.0.1") || strings.Contains(body, "rpc error") {
		t.Errorf("body shows an internal error:\n%s", body)
	}
}

// blockingBackend never answers; every call waits for its context.
type blockingBackend struct{}

func (*blockingBackend) SayHello(ctx context.Context, _ string) (string, error) {
	<-ctx.Done()
	return "", status.FromContextError(ctx.Err()).Err()
}

func (*blockingBackend) GetAll(ctx context.Context, _ int32) ([]*api.Item, error) {
	<-ctx.Done()
	return nil, status.FromContextError(ctx.Err()).Err()
}

func (*blockingBackend) GetStream(ctx context.Context, _ int32) iter.Seq2[*api.Item, error] {
	return func(yield func(*api.Item, error) bool) {
		<-ctx.Done()
		yield(nil, status.FromContextError(ctx.Err()).Err())
	}
}

func (*blockingBackend) Ready(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

func TestPageBackendTooSlow(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ts := newFrontend(t, Config{Timeout: timeout}, &blockingBackend{})
	start := time.Now()
	resp, body := testkit.Get(t, ts.URL+"/")
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d, want 504:\n%s", resp.StatusCode, body)
	}
	// Not before the deadline; and well before the default one (5s), which
	// would show that the configured deadline was ignored.
	if d := time.Since(start); d < timeout || d >= DefaultConfig.Timeout {
		t.Errorf("answered after %v; the deadline is %v", d, timeout)
	}
	if !strings.Contains(body, "The backend is too slow") {
		t.Errorf("body lacks the plain message:\n%s", body)
	}
	// readyz has its own short deadline.
	if resp, _ := testkit.Get(t, ts.URL+"/readyz"); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("readyz: %d", resp.StatusCode)
	}
}

func TestRoutes(t *testing.T) {
	ts, _ := newStack(t, Config{})
	tests := []struct {
		method, path string
		want         int
		contentType  string
	}{
		{"POST", "/", 405, ""},
		{"DELETE", "/live", 405, ""},
		{"PUT", "/live/events", 405, ""},
		{"GET", "/nope", 404, "text/html; charset=utf-8"},
		{"GET", "/static/style.css", 200, "text/css; charset=utf-8"},
		{"GET", "/static/live.js", 200, "text/javascript; charset=utf-8"},
		{"GET", "/static/favicon.svg", 200, "image/svg+xml"},
		{"GET", "/static/", 404, ""},
		{"GET", "/static/missing.css", 404, ""},
		{"GET", "/live", 200, "text/html; charset=utf-8"},
		{"HEAD", "/healthz", 200, ""},
	}
	for _, tt := range tests {
		req, err := http.NewRequest(tt.method, ts.URL+tt.path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
		if tt.contentType != "" && resp.Header.Get("Content-Type") != tt.contentType {
			t.Errorf("%s %s: Content-Type %q, want %q", tt.method, tt.path, resp.Header.Get("Content-Type"), tt.contentType)
		}
		if resp.Header.Get("Content-Security-Policy") == "" {
			t.Errorf("%s %s: no Content-Security-Policy", tt.method, tt.path)
		}
	}
}

func TestFailedRequestsAreLogged(t *testing.T) {
	var logs telemetrytest.LogBuffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
	ts, b := newStack(t, Config{Logger: logger})
	testkit.Get(t, ts.URL+"/")
	if logs.String() != "" {
		t.Fatalf("a good request logged: %s", logs.String())
	}
	// The client's own mistakes, however many, stay below warn.
	for _, path := range []string{"/?items=-1", "/nope", "/static/../x", "/live/events?length=x"} {
		testkit.Get(t, ts.URL+path)
	}
	resp, err := http.Post(ts.URL+"/", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if logs.String() != "" {
		t.Fatalf("client errors logged at warn: %s", logs.String())
	}
	// A backend that is gone is for an operator to see.
	b.Stop(time.Second)
	testkit.Get(t, ts.URL+"/")
	want := `level=WARN msg="request failed" method=GET path=/ status=503`
	if got := logs.String(); !strings.Contains(got, want) {
		t.Errorf("log %q lacks %q", got, want)
	}
}

// sseEvent is one Server-Sent Event.
type sseEvent struct {
	name, data string
}

// readEvents parses a text/event-stream until EOF or until stop says so.
func readEvents(r io.Reader, stop func(sseEvent) bool) ([]sseEvent, error) {
	var events []sseEvent
	var cur sseEvent
	var data []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if data == nil {
				continue
			}
			cur.data = strings.Join(data, "\n")
			events = append(events, cur)
			if stop != nil && stop(cur) {
				return events, nil
			}
			cur, data = sseEvent{}, nil
		case strings.HasPrefix(line, ":"):
		case strings.HasPrefix(line, "event: "):
			cur.name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = append(data, strings.TrimPrefix(line, "data: "))
		}
	}
	return events, sc.Err()
}

func TestLiveEventsStreamsEveryItem(t *testing.T) {
	ts, _ := newStack(t, Config{})
	resp, err := http.Get(ts.URL + "/live/events?length=25")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	events, err := readEvents(resp.Body, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 26 {
		t.Fatalf("%d events, want 25 items and done: %v", len(events), events)
	}
	for i, ev := range events[:25] {
		want := fmt.Sprintf(`{"id":%d,"name":"name %d"}`, i+1, i+1)
		if ev.name != "" || ev.data != want {
			t.Errorf("event %d: %+v, want data %s", i, ev, want)
		}
	}
	if last := events[25]; last != (sseEvent{"done", "25"}) {
		t.Errorf("last event %+v, want done 25", last)
	}
}

func TestLiveRejectsBadLength(t *testing.T) {
	ts, _ := newStack(t, Config{MaxLiveItems: 50})
	tests := []struct{ length, want string }{
		{"-1", "length must be 0 or more, got -1."},
		{"51", "length must be at most 50, got 51."},
		{"many", `length must be a whole number from 0 to 50, got "many".`},
		{"", `length must be a whole number from 0 to 50, got "".`},
	}
	for _, tt := range tests {
		t.Run(tt.length, func(t *testing.T) {
			resp, body := testkit.Get(t, ts.URL+"/live/events?length="+url.QueryEscape(tt.length))
			if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") {
				t.Errorf("events: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if body != tt.want+"\n" {
				t.Errorf("events body %q, want %q", body, tt.want)
			}
			resp, body = testkit.Get(t, ts.URL+"/live?length="+url.QueryEscape(tt.length))
			if resp.StatusCode != 400 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
				t.Errorf("page: status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
			}
			if want := strings.ReplaceAll(tt.want, `"`, "&#34;"); !strings.Contains(body, want) {
				t.Errorf("page lacks %q:\n%s", want, body)
			}
		})
	}
}

// endlessBackend streams items until its context ends, and reports that end.
type endlessBackend struct {
	blockingBackend
	cancelled chan struct{}
}

func (b *endlessBackend) GetStream(ctx context.Context, _ int32) iter.Seq2[*api.Item, error] {
	return func(yield func(*api.Item, error) bool) {
		defer close(b.cancelled)
		for i := int32(1); ; i++ {
			select {
			case <-ctx.Done():
				yield(nil, status.FromContextError(ctx.Err()).Err())
				return
			default:
			}
			if !yield(backend.NewItem(i), nil) {
				return
			}
		}
	}
}

func TestLiveEventsClosingTheReaderCancelsTheBackendStream(t *testing.T) {
	fake := &endlessBackend{cancelled: make(chan struct{})}
	ts := newFrontend(t, Config{}, fake)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", ts.URL+"/live/events?length=100000", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	events, err := readEvents(resp.Body, func(sseEvent) bool { return true })
	if err != nil || len(events) != 1 {
		t.Fatalf("first event: %v %v", events, err)
	}
	// The browser closes the tab.
	cancel()
	resp.Body.Close()
	select {
	case <-fake.cancelled:
	case <-time.After(10 * time.Second):
		t.Fatal("the backend stream was not cancelled after the reader went away")
	}
}

// failingBackend streams a few items and then fails.
type failingBackend struct {
	blockingBackend
	err error
}

func (b *failingBackend) GetStream(context.Context, int32) iter.Seq2[*api.Item, error] {
	return func(yield func(*api.Item, error) bool) {
		for i := int32(1); i <= 2; i++ {
			if !yield(backend.NewItem(i), nil) {
				return
			}
		}
		yield(nil, b.err)
	}
}

func TestLiveEventsReportFailureAsErrorEvent(t *testing.T) {
	ts := newFrontend(t, Config{}, &failingBackend{err: status.Error(codes.Unavailable, "connection refused at 10.1.2.3")})
	resp, err := http.Get(ts.URL + "/live/events?length=10")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	events, err := readEvents(resp.Body, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) != 3 {
		t.Fatalf("events %v, want 2 items and an error", events)
	}
	last := events[2]
	if last.name != "error" || !strings.Contains(last.data, "The backend is unreachable") || strings.Contains(last.data, "10.1.2.3") {
		t.Errorf("last event %+v", last)
	}
}

func TestShutdownEndsLiveStreams(t *testing.T) {
	fake := &endlessBackend{cancelled: make(chan struct{})}
	srv := New(Config{}, fake)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	resp, err := http.Get("http://" + lis.Addr().String() + "/live/events?length=100000")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if _, err := readEvents(resp.Body, func(sseEvent) bool { return true }); err != nil {
		t.Fatal(err)
	}
	// Keep reading, as a browser would, so the handler never blocks on a
	// full socket while the server shuts down.
	lastEvent := make(chan sseEvent, 1)
	go func() {
		var last sseEvent
		_, _ = readEvents(resp.Body, func(ev sseEvent) bool { last = ev; return false })
		lastEvent <- last
	}()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := waitFor(t, served, "Serve to return"); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	waitFor(t, fake.cancelled, "the backend stream to be cancelled")
	// The stream ends with a message, not a dropped connection.
	if last := waitFor(t, lastEvent, "the last event"); last.name != "error" || !strings.Contains(last.data, "shutting down") {
		t.Errorf("last event %+v", last)
	}
}

func TestServeReturnsNilAfterShutdown(t *testing.T) {
	srv := New(Config{}, &blockingBackend{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	resp, body := testkit.Get(t, "http://"+lis.Addr().String()+"/healthz")
	if resp.StatusCode != 200 || body != "ok\n" {
		t.Fatalf("healthz: %d %q", resp.StatusCode, body)
	}
	if err := srv.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestNewTakesDefaults(t *testing.T) {
	s := New(Config{Timeout: time.Second}, &blockingBackend{})
	want := DefaultConfig
	want.Timeout = time.Second
	got := s.cfg
	got.Logger = nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("config %+v, want %+v", got, want)
	}
	if s.http.ReadHeaderTimeout == 0 || s.http.ReadTimeout == 0 || s.http.WriteTimeout <= time.Second ||
		s.http.IdleTimeout == 0 || s.http.MaxHeaderBytes == 0 {
		t.Errorf("http.Server lacks a timeout or limit: %+v", s.http)
	}
}

// waitFor receives from ch; the bound only turns a hang into a failure.
func waitFor[T any](t testing.TB, ch <-chan T, what string) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
		panic("unreachable")
	}
}

// gatedBackend answers only once release is closed, and reports each call
// it receives on entered.
type gatedBackend struct {
	entered chan string
	release chan struct{}
}

func (b *gatedBackend) wait(ctx context.Context, call string) error {
	b.entered <- call
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return status.FromContextError(ctx.Err()).Err()
	}
}

func (b *gatedBackend) SayHello(ctx context.Context, name string) (string, error) {
	return "Hello " + name + "!", b.wait(ctx, "sayHello")
}

func (b *gatedBackend) GetAll(ctx context.Context, n int32) ([]*api.Item, error) {
	if err := b.wait(ctx, "getAll"); err != nil {
		return nil, err
	}
	return []*api.Item{backend.NewItem(1)}, nil
}

func (b *gatedBackend) GetStream(ctx context.Context, n int32) iter.Seq2[*api.Item, error] {
	return func(yield func(*api.Item, error) bool) {
		if err := b.wait(ctx, "getStream"); err != nil {
			yield(nil, err)
			return
		}
		yield(backend.NewItem(1), nil)
	}
}

func (b *gatedBackend) Ready(context.Context) error { return nil }

// A page request in flight when shutdown starts must still get its page:
// a rolling update must not turn into errors for the users of the old pod.
func TestShutdownLetsPageRequestsFinish(t *testing.T) {
	gate := &gatedBackend{entered: make(chan string, len(pageCalls)), release: make(chan struct{})}
	srv := New(Config{}, gate)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()

	type page struct {
		code int
		body string
	}
	got := make(chan page, 1)
	go func() {
		resp, err := http.Get("http://" + lis.Addr().String() + "/")
		if err != nil {
			got <- page{body: err.Error()}
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		got <- page{resp.StatusCode, string(body)}
	}()
	// The calls run in turn: the first holds the page until release.
	waitFor(t, gate.entered, "the page's first backend call")

	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- srv.Shutdown(ctx)
	}()
	waitFor(t, srv.liveCtx.Done(), "shutdown to start")
	close(gate.release)

	p := waitFor(t, got, "the page")
	if p.code != http.StatusOK || !strings.Contains(p.body, "Hello Gonzalo!") {
		t.Fatalf("page in flight during shutdown: %d\n%s", p.code, p.body)
	}
	if err := waitFor(t, shutdown, "Shutdown"); err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if err := waitFor(t, served, "Serve to return"); err != nil {
		t.Fatalf("Serve: %v", err)
	}
}

func TestLiveStreamsAreBounded(t *testing.T) {
	fake := &endlessBackend{cancelled: make(chan struct{})}
	ts := newFrontend(t, Config{MaxLiveStreams: 1}, fake)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", ts.URL+"/live/events?length=100000", nil)
	if err != nil {
		t.Fatal(err)
	}
	first, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Body.Close()
	if _, err := readEvents(first.Body, func(sseEvent) bool { return true }); err != nil {
		t.Fatal(err)
	}
	resp, body := testkit.Get(t, ts.URL+"/live/events?length=10")
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "share of the live streams") {
		t.Fatalf("second live stream: %d %q; want 429 saying why", resp.StatusCode, body)
	}
}

// panickingBackend fails the way a bug would, in the page's second call.
type panickingBackend struct{ blockingBackend }

func (*panickingBackend) SayHello(_ context.Context, name string) (string, error) {
	return "Hello " + name + "!", nil
}

func (*panickingBackend) GetAll(context.Context, int32) ([]*api.Item, error) {
	panic("bug in the backend client")
}

// A bug in one request answers a plain 500, without the stack, and the
// server goes on serving.
func TestPanicInAHandlerIsAPlain500(t *testing.T) {
	ts := newFrontend(t, Config{Timeout: time.Second}, &panickingBackend{})
	resp, body := testkit.Get(t, ts.URL+"/")
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(body, "Something went wrong in the frontend.") {
		t.Fatalf("status %d; want 500 with a plain message:\n%s", resp.StatusCode, body)
	}
	if strings.Contains(body, "goroutine") || strings.Contains(body, "bug in") {
		t.Fatalf("the 500 page shows the panic:\n%s", body)
	}
	if resp, _ := testkit.Get(t, ts.URL+"/healthz"); resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz after the panic: %d", resp.StatusCode)
	}
}
