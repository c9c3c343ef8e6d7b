package gateway_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc/codes"
	grpcstatus "google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/gateway"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// errorCases are requests the gateway refuses, with the status, the gRPC
// code and a part of the message of each.
var errorCases = []struct {
	name, method, path string
	header             []string
	status             int
	code               codes.Code
	message            string
}{
	{"negative length", "GET", "/v1/items?length=-1", nil, 400, codes.InvalidArgument, "length -1 is out of range"},
	{"length over the limit", "GET", "/v1/items?length=100001", nil, 400, codes.InvalidArgument, "between 0 and 100000"},
	{"non-numeric length", "GET", "/v1/items?length=ten", nil, 400, codes.InvalidArgument, `"ten"`},
	{"length over int32", "GET", "/v1/items?length=99999999999", nil, 400, codes.InvalidArgument, "99999999999"},
	{"fractional length", "GET", "/v1/items?length=1.5", nil, 400, codes.InvalidArgument, "1.5"},
	{"stream: negative length", "GET", "/v1/stream?length=-1", nil, 400, codes.InvalidArgument, "length -1 is out of range"},
	{"stream: over the limit", "GET", "/v1/stream?length=10000001", nil, 400, codes.InvalidArgument, "between 0 and 10000000"},
	{"stream: non-numeric length", "GET", "/v1/stream?length=ten", nil, 400, codes.InvalidArgument, `"ten"`},
	{"name too long", "GET", "/v1/hello?name=" + strings.Repeat("x", 1025), nil, 400, codes.InvalidArgument, "name is 1025 bytes long"},
	{"name not UTF-8", "GET", "/v1/hello?name=%FF", nil, 400, codes.InvalidArgument, "not valid UTF-8"},
	{"name not UTF-8, unescaped", "GET", "/v1/hello?name=\xff", nil, 400, codes.InvalidArgument, "not valid UTF-8"},
	{"malformed escape", "GET", "/v1/hello?name=%ZZ", nil, 400, codes.InvalidArgument, "invalid URL escape"},
	{"repeated length", "GET", "/v1/items?length=1&length=2", nil, 400, codes.InvalidArgument, "too many values"},
	{"misspelt parameter", "GET", "/v1/items?lenght=1000", nil, 400, codes.InvalidArgument, `unknown query parameter "lenght"; this call takes length`},
	{"unknown parameter", "GET", "/v1/items?length=1&bogus=1", nil, 400, codes.InvalidArgument, `unknown query parameter "bogus"`},
	{"another call's parameter", "GET", "/v1/hello?length=3", nil, 400, codes.InvalidArgument, `unknown query parameter "length"; this call takes name`},
	{"nested unknown parameter", "GET", "/v1/hello?name=x&x.y=1", nil, 400, codes.InvalidArgument, `unknown query parameter "x.y"`},
	{"stream: misspelt parameter", "GET", "/v1/stream?lenght=5", nil, 400, codes.InvalidArgument, `unknown query parameter "lenght"; this call takes length`},
	{"stream: unknown parameter", "GET", "/v1/stream?length=5&bogus", nil, 400, codes.InvalidArgument, `unknown query parameter "bogus"`},
	{"unknown path", "GET", "/v1/nope", nil, 404, codes.NotFound, "/v1/nope"},
	{"root", "GET", "/", nil, 404, codes.NotFound, "no such path"},
	{"wrong method", "POST", "/v1/items?length=1", nil, 405, codes.Unimplemented, "use GET"},
	{"wrong method on the stream", "DELETE", "/v1/stream", nil, 405, codes.Unimplemented, "use GET"},
	{"malformed Grpc-Timeout", "GET", "/v1/hello", []string{"Grpc-Timeout", "soon"}, 400, codes.InvalidArgument, "Grpc-Timeout"},
	{"Grpc-Timeout too many digits", "GET", "/v1/items", []string{"Grpc-Timeout", "123456789S"}, 400, codes.InvalidArgument, "at most 8 digits"},
	{"hello: deadline passed during the call", "GET", "/v1/hello?name=x", []string{"Grpc-Timeout", "1n"}, 504, codes.DeadlineExceeded, "deadline"},
	{"items: deadline passed during the call", "GET", "/v1/items?length=1000", []string{"Grpc-Timeout", "1n"}, 504, codes.DeadlineExceeded, "deadline"},
	{"stream deadline before its first item", "GET", "/v1/stream?length=10", []string{"Grpc-Timeout", "1n"}, 504, codes.DeadlineExceeded, "deadline"},
}

func TestErrorsMapToHTTPStatusesWithAJSONBody(t *testing.T) {
	r := start(t, gateway.Config{})
	for _, tc := range errorCases {
		t.Run(tc.name, func(t *testing.T) {
			resp := r.do(context.Background(), tc.method, tc.path, tc.header...)
			defer resp.Body.Close()
			if resp.StatusCode != tc.status {
				t.Errorf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q, want application/json", ct)
			}
			if tc.status == 405 && resp.Header.Get("Allow") != "GET" {
				t.Errorf("Allow %q, want GET", resp.Header.Get("Allow"))
			}
			var body spb.Status
			var raw json.RawMessage
			if err := json.NewDecoder(resp.Body).Decode(&raw); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			decode(t, raw, &body)
			if codes.Code(body.GetCode()) != tc.code || !strings.Contains(body.GetMessage(), tc.message) {
				t.Errorf("body %s; want code %v and a message with %q", raw, tc.code, tc.message)
			}
			if strings.Contains(body.GetMessage(), "goroutine") {
				t.Errorf("the message holds a stack trace: %s", body.GetMessage())
			}
		})
	}
}

func TestPanicIsA500NotACrash(t *testing.T) {
	r := start(t, gateway.Config{})
	r.svc.panics.Store(true)
	resp, body := r.get("/v1/hello?name=x")
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("status %d, want 500", resp.StatusCode)
	}
	var st spb.Status
	decode(t, body, &st)
	if codes.Code(st.GetCode()) != codes.Internal || strings.Contains(st.GetMessage(), "boom") {
		t.Errorf("body %s; want Internal without the panic's details", body)
	}

	// Midway through a stream, the status is out: only cutting the
	// connection tells the client its answer is incomplete.
	resp = r.open(context.Background(), "/v1/stream?length=100")
	_, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || err == nil {
		t.Errorf("stream that panics after 3 items: status %d, read error %v; want 200 and a cut connection", resp.StatusCode, err)
	}

	r.svc.panics.Store(false)
	if resp, body := r.get("/v1/hello?name=x"); resp.StatusCode != http.StatusOK {
		t.Errorf("after the panic: status %d: %s", resp.StatusCode, body)
	}
}

func TestClientGoingAwayStopsTheStream(t *testing.T) {
	r := start(t, gateway.Config{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	resp := r.open(ctx, "/v1/stream?length=10000000")
	defer resp.Body.Close()
	lines := bufio.NewScanner(resp.Body)
	for range 3 {
		if !lines.Scan() {
			t.Fatalf("stream ended early: %v", lines.Err())
		}
	}
	cancel()
	select {
	case err := <-r.svc.streamEnded:
		if c := grpcstatus.Code(err); c != codes.Canceled {
			t.Errorf("the service's loop ended with %v, want Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the service's loop still runs 30s after the client left")
	}
}

func TestShutdownEndsStreamsWithUnavailable(t *testing.T) {
	r := start(t, gateway.Config{})
	resp := r.open(context.Background(), "/v1/stream?length=10000000")
	defer resp.Body.Close()
	body := bufio.NewReader(resp.Body)
	if _, err := body.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	shutdown := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		shutdown <- r.srv.Shutdown(ctx)
	}()
	res := readResults(t, body)
	if res.err == nil || codes.Code(res.err.GetCode()) != codes.Unavailable {
		t.Errorf("stream ended with %v; want a final Unavailable line", res.err)
	}
	if err := <-shutdown; err != nil {
		t.Errorf("Shutdown: %v", err)
	}
}

func TestGrpcTimeoutIsHonouredCappedOrDefaulted(t *testing.T) {
	cfg := gateway.Config{Timeout: 7 * time.Second, StreamTimeout: 40 * time.Second, MaxTimeout: 20 * time.Second}
	r := start(t, cfg)
	for _, tc := range []struct {
		name, path, timeout string
		want                time.Duration
	}{
		{"unary default", "/v1/hello?name=x", "", 7 * time.Second},
		{"unary asks 3s", "/v1/hello?name=x", "3S", 3 * time.Second},
		{"unary asks 1500ms", "/v1/hello?name=x", "1500m", 1500 * time.Millisecond},
		{"unary asks too long", "/v1/hello?name=x", "100H", 20 * time.Second},
		{"unary asks the longest", "/v1/hello?name=x", "99999999H", 20 * time.Second},
		{"stream default", "/v1/stream?length=1", "", 40 * time.Second},
		{"stream asks 2 minutes: capped", "/v1/stream?length=1", "2M", 20 * time.Second},
		{"stream asks 5s", "/v1/stream?length=1", "5000000u", 5 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var header []string
			if tc.timeout != "" {
				header = []string{"Grpc-Timeout", tc.timeout}
			}
			resp, body := r.get(tc.path, header...)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			left := <-r.svc.deadlines
			if strings.HasPrefix(tc.path, "/v1/stream") {
				<-r.svc.streamEnded
			}
			// The call starts a little after the request arrives, on a
			// loaded machine up to a few seconds later.
			if left > tc.want || left < tc.want-3*time.Second {
				t.Errorf("the service saw %v left; want just under %v", left, tc.want)
			}
		})
	}
}

func TestOpenAPIDocument(t *testing.T) {
	r := start(t, gateway.Config{})
	resp, body := r.get("/v1/openapi.json")
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("status %d, Content-Type %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	var doc struct {
		Swagger string
		Info    struct{ Title string }
		Paths   map[string]map[string]struct {
			OperationID string `json:"operationId"`
			Parameters  []struct{ Name string }
			Produces    []string
		}
	}
	if err := json.Unmarshal(body, &doc); err != nil {
		t.Fatal(err)
	}
	if doc.Swagger != "2.0" || doc.Info.Title != "grpcplay REST/JSON API" {
		t.Errorf("swagger %q, title %q", doc.Swagger, doc.Info.Title)
	}
	if p := doc.Paths["/v1/stream"]["get"].Produces; len(p) != 1 || p[0] != "application/x-ndjson" {
		t.Errorf("/v1/stream produces %v, want application/x-ndjson", p)
	}
	for path, op := range map[string]string{"/v1/hello": "Api_sayHello", "/v1/items": "Api_getAll", "/v1/stream": "Api_getStream"} {
		get := doc.Paths[path]["get"]
		if get.OperationID != op || len(get.Parameters) != 1 {
			t.Errorf("%s: %+v; want GET %s with one query parameter", path, get, op)
		}
	}
}

// Each request is logged once, as the gRPC server logs each call, with the
// status the client got: at info, or at debug for the client's mistakes,
// which a client can make at any rate.
func TestEachRequestIsLogged(t *testing.T) {
	var logs telemetrytest.LogBuffer
	r := start(t, gateway.Config{Logger: slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	r.get("/v1/hello?name=x")
	r.get("/v1/items?length=-1")
	r.get("/v1/hello", "Grpc-Timeout", "soon")
	r.get("/v1/stream?length=2")
	want := []string{
		`msg="REST call" method=GET path=/v1/hello status=200`,
		`level=DEBUG msg="REST call" method=GET path=/v1/items status=400`,
		`level=DEBUG msg="REST call" method=GET path=/v1/hello status=400`,
		`msg="REST call" method=GET path=/v1/stream status=200`,
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		got := logs.String()
		for _, w := range want {
			if !strings.Contains(got, w) {
				return fmt.Errorf("no log line %q in:\n%s", w, got)
			}
		}
		return nil
	})
	if got := logs.String(); strings.Contains(got, "level=WARN") || strings.Contains(got, "level=ERROR") {
		t.Errorf("a client's mistakes are logged above info:\n%s", got)
	}
}

// Streams beyond MaxStreams get 429 at once; a slot frees when a stream ends.
func TestTooManyStreams(t *testing.T) {
	r := start(t, gateway.Config{MaxStreams: 1})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := r.open(ctx, "/v1/stream?length=10000000")
	defer first.Body.Close()
	if _, err := bufio.NewReader(first.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	resp, body := r.get("/v1/stream?length=1")
	var st spb.Status
	decode(t, body, &st)
	if resp.StatusCode != http.StatusTooManyRequests || codes.Code(st.GetCode()) != codes.ResourceExhausted {
		t.Fatalf("second stream: %d %s; want 429 ResourceExhausted", resp.StatusCode, body)
	}
	if resp, _ := r.get("/v1/items?length=1"); resp.StatusCode != http.StatusOK {
		t.Errorf("unary call while the streams are full: %d, want 200", resp.StatusCode)
	}
	cancel()
	<-r.svc.streamEnded
	testkit.Eventually(t, 10*time.Second, func() error {
		if resp, body := r.get("/v1/stream?length=1"); resp.StatusCode != http.StatusOK {
			return fmt.Errorf("after the first stream ended: %d %s", resp.StatusCode, body)
		}
		return nil
	})
}
