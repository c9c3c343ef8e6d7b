package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"testing/quick"
	"time"

	"go.uber.org/goleak"
	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	grpcstatus "google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/gateway"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// spy is the real service, watched: it reports the deadline each call gets
// and when each stream's loop has returned.
type spy struct {
	*backend.Service
	deadlines   chan time.Duration // time left when a call starts
	streamEnded chan error
	panics      bool
}

func newSpy() *spy {
	return &spy{
		Service:     backend.NewService(backend.DefaultLimits),
		deadlines:   make(chan time.Duration, 16),
		streamEnded: make(chan error, 16),
	}
}

func (s *spy) noteDeadline(ctx context.Context) {
	if d, ok := ctx.Deadline(); ok {
		select {
		case s.deadlines <- time.Until(d):
		default:
		}
	}
}

func (s *spy) SayHello(ctx context.Context, req *api.HelloRequest) (*api.Hello, error) {
	s.noteDeadline(ctx)
	if s.panics {
		panic("spy: boom")
	}
	return s.Service.SayHello(ctx, req)
}

func (s *spy) GetStream(req *api.ApiRequest, stream grpc.ServerStreamingServer[api.Item]) error {
	s.noteDeadline(stream.Context())
	err := s.Service.GetStream(req, stream)
	select {
	case s.streamEnded <- err:
	default: // nobody is watching this stream
	}
	return err
}

// rig serves one service both ways: gRPC and REST, each on its own
// loopback port, with a client for each.
type rig struct {
	t    *testing.T
	svc  *spy
	srv  *gateway.Server
	base string
	http *http.Client
	grpc api.ApiClient
}

func start(t *testing.T, cfg gateway.Config) *rig {
	t.Helper()
	r := &rig{t: t, svc: newSpy()}

	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	gs := grpc.NewServer()
	api.RegisterApiServer(gs, r.svc)
	grpcDone := make(chan struct{})
	go func() { defer close(grpcDone); gs.Serve(grpcLis) }()
	t.Cleanup(func() { gs.Stop(); <-grpcDone })
	conn, err := grpc.NewClient(grpcLis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	r.grpc = api.NewApiClient(conn)

	restLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r.srv = gateway.New(cfg, r.svc)
	served := make(chan error, 1)
	go func() { served <- r.srv.Serve(restLis) }()
	transport := &http.Transport{}
	r.http = &http.Client{Transport: transport, Timeout: time.Minute}
	r.base = "http://" + restLis.Addr().String()
	t.Cleanup(func() {
		transport.CloseIdleConnections()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return r
}

// get sends a GET with optional headers and returns the whole response.
func (r *rig) get(path string, header ...string) (*http.Response, []byte) {
	r.t.Helper()
	resp := r.open(context.Background(), path, header...)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		r.t.Fatalf("GET %s: reading body: %v", path, err)
	}
	return resp, body
}

func (r *rig) open(ctx context.Context, path string, header ...string) *http.Response {
	r.t.Helper()
	return r.do(ctx, http.MethodGet, path, header...)
}

func (r *rig) do(ctx context.Context, method, path string, header ...string) *http.Response {
	r.t.Helper()
	req, err := http.NewRequestWithContext(ctx, method, r.base+path, nil)
	if err != nil {
		r.t.Fatal(err)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := r.http.Do(req)
	if err != nil {
		r.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

// decode parses a REST body with protojson, strictly: an unknown field fails.
func decode(t *testing.T, body []byte, m proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal(body, m); err != nil {
		t.Fatalf("protojson: %v in %.200q", err, body)
	}
}

func TestRESTAndGRPCGiveTheSameItems(t *testing.T) {
	r := start(t, gateway.Config{})
	max := backend.DefaultLimits.MaxItems
	same := func(length int32) bool {
		resp, body := r.get(fmt.Sprintf("/v1/items?length=%d", length))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("length %d: status %d: %s", length, resp.StatusCode, body)
			return false
		}
		var rest api.Items
		decode(t, body, &rest)
		want, err := r.grpc.GetAll(context.Background(), &api.ApiRequest{Length: length})
		if err != nil {
			t.Fatalf("gRPC GetAll(%d): %v", length, err)
		}
		if !proto.Equal(&rest, want) {
			t.Errorf("length %d: REST and gRPC differ", length)
			return false
		}
		return true
	}
	for _, n := range []int32{0, 1, 2, 9, 10, 11, 99, 100, 127, 128, 1000, 1001, 65536, max} {
		same(n)
	}
	// Skewed towards short lists, which are cheap, while still reaching
	// the limit now and then.
	lengths := func(args []reflect.Value, rnd *rand.Rand) {
		args[0] = reflect.ValueOf(rnd.Int31n(rnd.Int31n(max) + 1))
	}
	if err := quick.Check(same, &quick.Config{MaxCount: 30, Values: lengths}); err != nil {
		t.Error(err)
	}
}

func TestRESTAndGRPCGiveTheSameStream(t *testing.T) {
	r := start(t, gateway.Config{})
	same := func(length int32) bool {
		resp := r.open(context.Background(), fmt.Sprintf("/v1/stream?length=%d", length))
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("length %d: status %d", length, resp.StatusCode)
			return false
		}
		rest := readResults(t, resp.Body)
		stream, err := r.grpc.GetStream(context.Background(), &api.ApiRequest{Length: length})
		if err != nil {
			t.Fatal(err)
		}
		var want []*api.Item
		for {
			item, err := stream.Recv()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("gRPC GetStream(%d): %v", length, err)
			}
			want = append(want, item)
		}
		if len(rest.items) != len(want) || rest.err != nil {
			t.Errorf("length %d: REST gave %d items and error %v; gRPC %d items", length, len(rest.items), rest.err, len(want))
			return false
		}
		for i := range want {
			if !proto.Equal(rest.items[i], want[i]) {
				t.Errorf("length %d: item %d differs: REST %v, gRPC %v", length, i, rest.items[i], want[i])
				return false
			}
		}
		return true
	}
	for _, n := range []int32{0, 1, 2, 10, 1000, 5000} {
		same(n)
	}
	lengths := func(args []reflect.Value, rnd *rand.Rand) {
		args[0] = reflect.ValueOf(rnd.Int31n(3000))
	}
	if err := quick.Check(same, &quick.Config{MaxCount: 20, Values: lengths}); err != nil {
		t.Error(err)
	}
}

func TestRESTAndGRPCGiveTheSameHello(t *testing.T) {
	r := start(t, gateway.Config{})
	same := func(name string) bool {
		resp, body := r.get("/v1/hello?name=" + url.QueryEscape(name))
		if resp.StatusCode != http.StatusOK {
			t.Errorf("name %q: status %d: %s", name, resp.StatusCode, body)
			return false
		}
		var rest api.Hello
		decode(t, body, &rest)
		want, err := r.grpc.SayHello(context.Background(), &api.HelloRequest{Name: name})
		if err != nil {
			t.Fatalf("gRPC SayHello(%q): %v", name, err)
		}
		return proto.Equal(&rest, want)
	}
	for _, name := range []string{"", "Gonzalo", "a b", "&length=3", "100%", "名前", "🙂", "\"quoted\"", "<b>", strings.Repeat("x", 1024)} {
		if !same(name) {
			t.Errorf("name %q: REST and gRPC differ", name)
		}
	}
	if err := quick.Check(same, &quick.Config{MaxCount: 100}); err != nil {
		t.Error(err)
	}
}

// results is a parsed NDJSON stream.
type results struct {
	items []*api.Item
	err   *spb.Status // the final error line, if any
	lines []string
}

// readResults parses every line of a stream, failing the test on a line
// that is neither a result nor a final error.
func readResults(t *testing.T, body io.Reader) results {
	t.Helper()
	var res results
	sc := bufio.NewScanner(body)
	for sc.Scan() {
		line := sc.Bytes()
		res.lines = append(res.lines, string(line))
		if res.err != nil {
			t.Fatalf("a line after the error line: %s", line)
		}
		var envelope map[string]json.RawMessage
		if err := json.Unmarshal(line, &envelope); err != nil || len(envelope) != 1 {
			t.Fatalf("line %d is not one JSON object with one key: %q (%v)", len(res.lines), line, err)
		}
		switch {
		case envelope["result"] != nil:
			item := &api.Item{}
			decode(t, envelope["result"], item)
			res.items = append(res.items, item)
		case envelope["error"] != nil:
			res.err = &spb.Status{}
			decode(t, envelope["error"], res.err)
		default:
			t.Fatalf("line %d has neither result nor error: %q", len(res.lines), line)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("reading stream: %v", err)
	}
	return res
}

func TestStreamFormat(t *testing.T) {
	r := start(t, gateway.Config{})
	resp, body := r.get("/v1/stream?length=3")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type %q, want application/x-ndjson", ct)
	}
	want := `{"result":{"id":1,"name":"name 1"}}` + "\n" +
		`{"result":{"id":2,"name":"name 2"}}` + "\n" +
		`{"result":{"id":3,"name":"name 3"}}` + "\n"
	if string(body) != want {
		t.Errorf("body:\n%s\nwant:\n%s", body, want)
	}
	// An item's JSON is the same as in the unary call's answer.
	_, items := r.get("/v1/items?length=1")
	var compact bytes.Buffer
	if err := json.Compact(&compact, items); err != nil {
		t.Fatal(err)
	}
	if got := compact.String(); got != `{"items":[{"id":1,"name":"name 1"}]}` {
		t.Errorf("/v1/items?length=1 = %s", got)
	}

	resp, body = r.get("/v1/stream?length=0")
	if resp.StatusCode != http.StatusOK || len(body) != 0 {
		t.Errorf("length 0: status %d, body %q; want 200 and no lines", resp.StatusCode, body)
	}
}

func TestStreamDeadlineEndsWithAnErrorLine(t *testing.T) {
	r := start(t, gateway.Config{})
	// Ten million items take far longer than a second to write.
	resp := r.open(context.Background(), "/v1/stream?length=10000000", "Grpc-Timeout", "1S")
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d, want 200 and a stream", resp.StatusCode)
	}
	res := readResults(t, resp.Body)
	if len(res.items) == 0 || len(res.items) == 10_000_000 {
		t.Fatalf("got %d items; want the stream cut by its deadline", len(res.items))
	}
	for i, item := range res.items {
		if item.GetId() != int32(i+1) {
			t.Fatalf("item %d has id %d: out of order", i, item.GetId())
		}
	}
	if res.err == nil || codes.Code(res.err.GetCode()) != codes.DeadlineExceeded {
		t.Fatalf("last line %q; want an error line with code DeadlineExceeded", res.lines[len(res.lines)-1])
	}
	if err := <-r.svc.streamEnded; grpcstatus.Code(err) != codes.DeadlineExceeded {
		t.Errorf("service's loop ended with %v", err)
	}
}
