package reliability_test

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/frontend"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// stillServes fails the test unless the backend answers a normal call: a bad
// request must cost only itself.
func stillServes(t *testing.T, c *client.Client) {
	t.Helper()
	if got, err := c.SayHello(t.Context(), "after"); err != nil || got != "Hello after!" {
		t.Fatalf("normal call after the bad one: %q, %v", got, err)
	}
}

func wantStatus(t *testing.T, err error, code codes.Code, inMessage string) {
	t.Helper()
	if status.Code(err) != code || !strings.Contains(status.Convert(err).Message(), inMessage) {
		t.Fatalf("got %v; want %s with a message containing %q", err, code, inMessage)
	}
}

func streamLen(t *testing.T, c *client.Client, n int32) (int, error) {
	got := 0
	for _, err := range c.GetStream(t.Context(), n) {
		if err != nil {
			return got, err
		}
		got++
	}
	return got, nil
}

// TestBadGRPCInput sends the backend every kind of bad request: each gets a
// clear error, and the backend goes on serving.
func TestBadGRPCInput(t *testing.T) {
	b := backendtest.Start(t, backend.Config{})
	c := testkit.NewClient(t, b.Addr)
	limits := backend.DefaultLimits

	t.Run("lengths", func(t *testing.T) { badLengths(t, c) })

	// A length is a varint on the wire. One sent as text is, for protobuf,
	// an unknown field with the same number: it is skipped, and the length
	// is the default 0, as it is for the post's Python server. The answer is
	// the one for length 0.
	t.Run("non-numeric length on the wire", func(t *testing.T) { nonNumericLength(t, c) })

	t.Run("over-long name", func(t *testing.T) {
		_, err := c.SayHello(t.Context(), strings.Repeat("x", limits.MaxNameBytes+1))
		wantStatus(t, err, codes.InvalidArgument, fmt.Sprintf("name is %d bytes long; the limit is %d bytes", limits.MaxNameBytes+1, limits.MaxNameBytes))
		stillServes(t, c)
		if _, err := c.SayHello(t.Context(), strings.Repeat("x", limits.MaxNameBytes)); err != nil {
			t.Fatalf("name of exactly the limit: %v", err)
		}
	})

	// The client library's codec (internal/vtcodec) does not check UTF-8,
	// as Go's protobuf would, so the name reaches the server, whose Service
	// refuses it: its codec does not check either.
	t.Run("non-UTF-8 name from the client library", func(t *testing.T) {
		_, err := c.SayHello(t.Context(), "bad \xff\xfe name")
		wantStatus(t, err, codes.InvalidArgument, "name is not valid UTF-8")
		stillServes(t, c)
	})

	// Any other client's gets the same answer.
	t.Run("non-UTF-8 name on the wire", func(t *testing.T) {
		raw := protowire.AppendTag(nil, 1, protowire.BytesType)
		raw = protowire.AppendString(raw, "bad \xff\xfe name")
		var reply api.Hello
		err := c.Conn().Invoke(t.Context(), api.Api_SayHello_FullMethodName, raw, &reply, grpc.ForceCodec(rawCodec{}))
		wantStatus(t, err, codes.InvalidArgument, "name is not valid UTF-8")
		stillServes(t, c)
	})

	// The server refuses any request over 64 KiB before decoding it.
	t.Run("oversized message", func(t *testing.T) {
		for _, size := range []int{64<<10 + 1, 4 << 20} {
			_, err := c.SayHello(t.Context(), strings.Repeat("x", size))
			wantStatus(t, err, codes.ResourceExhausted, "received message larger than max")
			stillServes(t, c)
		}
	})

	t.Run("garbage bytes", func(t *testing.T) {
		var reply api.Items
		err := c.Conn().Invoke(t.Context(), api.Api_GetAll_FullMethodName, []byte{0xff, 0xff, 0xff, 0xff}, &reply, grpc.ForceCodec(rawCodec{}))
		wantStatus(t, err, codes.Internal, "unmarshal")
		stillServes(t, c)
	})
}

func nonNumericLength(t *testing.T, c *client.Client) {
	raw := protowire.AppendTag(nil, 1, protowire.BytesType)
	raw = protowire.AppendString(raw, "ten")
	var reply api.Items
	err := c.Conn().Invoke(t.Context(), api.Api_GetAll_FullMethodName, raw, &reply, grpc.ForceCodec(rawCodec{}))
	if err != nil || len(reply.GetItems()) != 0 {
		t.Fatalf("getAll with length \"ten\": %d items, %v; want the answer to length 0", len(reply.GetItems()), err)
	}
	stillServes(t, c)
}

// badLengths are lengths out of range, each refused with a clear error.
func badLengths(t *testing.T, c *client.Client) {
	for _, n := range []int32{-1, math.MinInt32, backend.DefaultLimits.MaxItems + 1, math.MaxInt32} {
		_, err := c.GetAll(t.Context(), n)
		wantStatus(t, err, codes.InvalidArgument, fmt.Sprintf("length %d is out of range: it must be between 0 and %d", n, backend.DefaultLimits.MaxItems))
		stillServes(t, c)
	}
	for _, n := range []int32{-1, math.MinInt32, backend.DefaultLimits.MaxStreamItems + 1, math.MaxInt32} {
		got, err := streamLen(t, c, n)
		if got != 0 {
			t.Fatalf("getStream(%d) sent %d items before its error", n, got)
		}
		wantStatus(t, err, codes.InvalidArgument, fmt.Sprintf("between 0 and %d", backend.DefaultLimits.MaxStreamItems))
		stillServes(t, c)
	}
	// Zero is a valid length: the answer is no items, not an error.
	if items, err := c.GetAll(t.Context(), 0); err != nil || len(items) != 0 {
		t.Fatalf("getAll(0) = %d items, %v; want none and no error", len(items), err)
	}
	if got, err := streamLen(t, c, 0); err != nil || got != 0 {
		t.Fatalf("getStream(0) = %d items, %v; want none and no error", got, err)
	}
}

// rawCodec sends a request's bytes as they are, to put on the wire what Go's
// protobuf would refuse to marshal, and decodes replies as protobuf.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return v.([]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	return proto.Unmarshal(data, v.(proto.Message))
}
func (rawCodec) Name() string { return "proto" }

// TestBadHTTPInput sends the frontend bad queries, paths, methods, headers
// and a slow client: each gets a clear 4xx, or its connection closed, and
// the frontend goes on serving.
// pageFixture is a real frontend on a real backend, for the tests of what
// bad requests do to it.
type pageFixture struct {
	base, addr string
	hc         *http.Client
}

func (f *pageFixture) pageStillServes(t *testing.T) {
	t.Helper()
	if err := pageOK(t.Context(), f.hc, f.base+"/"); err != nil {
		t.Fatalf("normal page after the bad request: %v", err)
	}
}

func TestBadHTTPInput(t *testing.T) {
	b := backendtest.Start(t, backend.Config{})
	base := startFrontend(t, frontend.Config{}, testkit.NewClient(t, b.Addr))
	f := &pageFixture{base: base, addr: strings.TrimPrefix(base, "http://"), hc: newHTTPClient(t)}

	t.Run("query parameters", f.badQueryParameters)
	t.Run("unknown paths and methods", f.unknownPathsAndMethods)
	// Requests that net/http itself refuses, before any handler runs.
	t.Run("malformed requests", f.malformedRequests)
	// Slowloris: a client sends its headers a line at a time, slowly, to
	// hold a connection open forever. The server's ReadHeaderTimeout (5s)
	// closes it; meanwhile other users are served.
	t.Run("slowloris", f.slowloris)
}

func (f *pageFixture) slowloris(t *testing.T) {
	conn, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	start := time.Now()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan string, 1)
	go func() {
		answer, _ := io.ReadAll(conn)
		closed <- string(answer)
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	limit := time.After(30 * time.Second)
	for i := 0; ; i++ {
		select {
		case answer := <-closed:
			t.Logf("slow client cut off after %v, %d header lines, answer %q", time.Since(start).Round(time.Millisecond), i, answer)
			if strings.Contains(answer, " 200 ") {
				t.Fatalf("the slow client got a page: %q", answer)
			}
			f.pageStillServes(t)
			return
		case <-tick.C:
			f.pageStillServes(t)
			// A write may fail once the server has closed: the read above
			// reports that.
			_, _ = fmt.Fprintf(conn, "X-Slow-%d: y\r\n", i)
		case <-limit:
			t.Fatal("a client sending headers slowly held its connection for 30s")
		}
	}
}

func (f *pageFixture) malformedRequests(t *testing.T) {
	tests := []struct {
		name, request string
		want          string
	}{
		{"no request line", "GARBAGE\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"header without a colon", "GET / HTTP/1.1\r\nHost: x\r\nNo colon here\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"no Host header", "GET / HTTP/1.1\r\n\r\n", "HTTP/1.1 400 Bad Request"},
		{"headers over 64 KiB", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("x", 128<<10) + "\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
		{"URL over 64 KiB", "GET /?name=" + strings.Repeat("x", 128<<10) + " HTTP/1.1\r\nHost: x\r\n\r\n", "HTTP/1.1 431 Request Header Fields Too Large"},
	}
	for _, tt := range tests {
		conn, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		// The server may answer and close before it has read everything.
		go func() { _, _ = io.WriteString(conn, tt.request) }()
		line, err := bufio.NewReader(conn).ReadString('\n')
		conn.Close()
		if !strings.HasPrefix(line, tt.want) {
			t.Errorf("%s: server answered %q, %v; want %q", tt.name, line, err, tt.want)
		}
	}
	f.pageStillServes(t)
}

func (f *pageFixture) unknownPathsAndMethods(t *testing.T) {
	tests := []struct {
		method, path string
		want         int
	}{
		{"GET", "/nope", 404},
		{"GET", "/live/nope", 404},
		{"GET", "/static/nope.css", 404},
		{"GET", "/static/", 404},
		{"POST", "/", 405},
		{"PUT", "/live", 405},
		{"DELETE", "/live/events", 405},
		{"PATCH", "/healthz", 405},
		{"BREW", "/", 405},
	}
	for _, tt := range tests {
		req, err := http.NewRequestWithContext(t.Context(), tt.method, f.base+tt.path, strings.NewReader("x=1"))
		if err != nil {
			t.Fatal(err)
		}
		resp, err := f.hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", tt.method, tt.path, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tt.want {
			t.Errorf("%s %s: status %d, want %d", tt.method, tt.path, resp.StatusCode, tt.want)
		}
		if tt.want == 405 && resp.Header.Get("Allow") == "" {
			t.Errorf("%s %s: 405 without an Allow header", tt.method, tt.path)
		}
		if len(body) == 0 {
			t.Errorf("%s %s: %d with an empty body", tt.method, tt.path, resp.StatusCode)
		}
	}
	f.pageStillServes(t)
}

func (f *pageFixture) badQueryParameters(t *testing.T) {
	long := strings.Repeat("x", backend.DefaultLimits.MaxNameBytes+1)
	tests := []struct {
		path      string
		want      int
		inMessage []string
	}{
		{"/?items=-1", 400, []string{"items must be 0 or more, got -1."}},
		{"/?items=0", 200, nil},
		{"/?items=1001", 400, []string{"items must be at most 1000, got 1001."}},
		{"/?items=99999999999", 400, []string{"items must be at most 1000, got 99999999999."}},
		{"/?items=abc", 400, []string{"items must be a whole number from 0 to 1000, got &#34;abc&#34;."}},
		{"/?items=", 400, []string{"items must be a whole number"}},
		{"/?items=1e3", 400, []string{"items must be a whole number"}},
		{"/?stream=-5", 400, []string{"stream must be 0 or more, got -5."}},
		{"/?stream=0x10", 400, []string{"stream must be a whole number"}},
		{"/?items=x&stream=-1", 400, []string{"items must be a whole number", "stream must be 0 or more"}},
		{"/?name=", 400, []string{"name is empty"}},
		{"/?name=%FF%FE", 400, []string{"name is not valid UTF-8 text."}},
		{"/?name=" + long, 400, []string{"The backend refused the request: name is 1025 bytes long; the limit is 1024 bytes."}},
		{"/?name=" + url.QueryEscape("<script>alert(1)</script>"), 200, []string{"Hello &lt;script&gt;alert(1)&lt;/script&gt;!"}},
		{"/live?length=abc", 400, []string{"length must be a whole number from 0 to 100000"}},
		{"/live?length=100001", 400, []string{"length must be at most 100000, got 100001."}},
		{"/live/events?length=-1", 400, []string{"length must be 0 or more, got -1."}},
	}
	for _, tt := range tests {
		code, body, err := getPage(t.Context(), f.hc, f.base+tt.path)
		if err != nil {
			t.Fatalf("GET %s: %v", tt.path, err)
		}
		if code != tt.want {
			t.Errorf("GET %.80s: status %d, want %d\n%.500s", tt.path, code, tt.want, body)
		}
		for _, m := range tt.inMessage {
			if !strings.Contains(body, m) {
				t.Errorf("GET %.80s: body does not say %q\n%.2000s", tt.path, m, body)
			}
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "goroutine ") {
			t.Errorf("GET %.80s: body carries raw input or a stack trace", tt.path)
		}
	}
	f.pageStillServes(t)
}
