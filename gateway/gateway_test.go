package gateway_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"testing/quick"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
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
	panics      atomic.Bool
	// A hello to "hold" (or a getAll of holdLength) reports on held, then waits for release: a request
	// that stays in flight until the test lets it go.
	held, release chan struct{}
}

func newSpy(limits backend.Limits) *spy {
	return &spy{
		Service:     backend.NewService(limits),
		deadlines:   make(chan time.Duration, 16),
		streamEnded: make(chan error, 16),
		held:        make(chan struct{}, 16),
		release:     make(chan struct{}),
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
	if s.panics.Load() {
		panic("spy: boom")
	}
	if req.GetName() == "hold" {
		s.held <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
		}
	}
	return s.Service.SayHello(ctx, req)
}

// GetAll of holdLength items holds as a hello to "hold" does.
func (s *spy) GetAll(ctx context.Context, req *api.ApiRequest) (*api.Items, error) {
	if req.GetLength() == holdLength {
		s.held <- struct{}{}
		select {
		case <-s.release:
		case <-ctx.Done():
		}
	}
	return s.Service.GetAll(ctx, req)
}

const holdLength = 7777

// panickyStream panics on the fourth item, midway through a response.
type panickyStream struct {
	grpc.ServerStreamingServer[api.Item]
	sent int
}

func (p *panickyStream) Send(item *api.Item) error {
	if p.sent++; p.sent > 3 {
		panic("spy: boom mid-stream")
	}
	return p.ServerStreamingServer.Send(item)
}

func (s *spy) GetStream(req *api.ApiRequest, stream grpc.ServerStreamingServer[api.Item]) error {
	s.noteDeadline(stream.Context())
	if s.panics.Load() {
		stream = &panickyStream{ServerStreamingServer: stream}
	}
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
	t    testing.TB
	svc  *spy
	srv  *gateway.Server
	base string
	http *http.Client
	grpc api.ApiClient
}

func start(t testing.TB, cfg gateway.Config) *rig {
	t.Helper()
	return startLimited(t, cfg, backend.DefaultLimits)
}

// smallLimits keep the property tests quick under the race detector while
// they still reach every limit.
var smallLimits = backend.Limits{MaxItems: 3000, MaxStreamItems: 2000, MaxNameBytes: 64}

func startLimited(t testing.TB, cfg gateway.Config, limits backend.Limits) *rig {
	t.Helper()
	r := &rig{t: t, svc: newSpy(limits)}

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
func decode(t testing.TB, body []byte, m proto.Message) {
	t.Helper()
	if err := protojson.Unmarshal(body, m); err != nil {
		t.Fatalf("protojson: %v in %.200q", err, body)
	}
}

// restCall GETs path and returns its body on success, or the status it
// failed with.
func (r *rig) restCall(path string) ([]byte, *spb.Status) {
	r.t.Helper()
	resp, body := r.get(path)
	if resp.StatusCode == http.StatusOK {
		return body, nil
	}
	st := &spb.Status{}
	decode(r.t, body, st)
	if want := runtime.HTTPStatusFromCode(codes.Code(st.GetCode())); resp.StatusCode != want {
		r.t.Errorf("GET %s: status %d for code %v, want %d", path, resp.StatusCode, codes.Code(st.GetCode()), want)
	}
	return nil, st
}

// sameFailure says whether REST failed as gRPC did: the same code and
// message, or both not at all.
func sameFailure(t *testing.T, what string, rest *spb.Status, grpcErr error) bool {
	t.Helper()
	want := grpcstatus.Convert(grpcErr).Proto()
	if grpcErr == nil {
		want = nil
	}
	if (rest == nil) != (want == nil) || rest != nil && (rest.GetCode() != want.GetCode() || rest.GetMessage() != want.GetMessage()) {
		t.Errorf("%s: REST failed with %v, gRPC with %v", what, rest, want)
		return false
	}
	return true
}

// lengths generates lengths around the limits most of the time, and any
// int32 now and then.
func lengths(limit int32) func([]reflect.Value, *rand.Rand) {
	return func(args []reflect.Value, rnd *rand.Rand) {
		n := rnd.Int31n(limit + 2)
		if rnd.Intn(8) == 0 {
			n = int32(rnd.Uint32())
		}
		args[0] = reflect.ValueOf(n)
	}
}

var edgeLengths = []int32{0, 1, 2, 9, 10, 11, 99, 100, 127, 128, 1000, 1001, -1, math.MinInt32, math.MaxInt32}

// REST and gRPC give the same answers, or the same failure, for each
// method: at the edges of its input and its limit, and for inputs
// testing/quick makes up. Each RPC has a test of its own, TestREST<Name>:
// repocheck's TestEveryRPCIsServedEndToEnd asks for one.
func TestRESTSayHello(t *testing.T) {
	names := []any{"", "Gonzalo", "a b", "&length=3", "100%", "名前", "🙂", "\"quoted\"", "<b>", strings.Repeat("x", 64), strings.Repeat("x", 65), strings.Repeat("é", 33)}
	// quick's strings run to 50 runes of up to 4 bytes: some pass the
	// 64-byte limit and some do not.
	checkSameAnswers(t, "sayHello", sameHello, names, &quick.Config{MaxCount: 200})
}

func TestRESTGetAll(t *testing.T) {
	checkSameAnswers(t, "getAll", sameItems, edges(smallLimits.MaxItems), &quick.Config{MaxCount: 60, Values: lengths(smallLimits.MaxItems)})
}

func TestRESTGetStream(t *testing.T) {
	checkSameAnswers(t, "getStream", sameStream, edges(smallLimits.MaxStreamItems), &quick.Config{MaxCount: 30, Values: lengths(smallLimits.MaxStreamItems)})
}

// checkSameAnswers asks both faces of a gateway for each of edges, then
// for what quickConfig makes up. same is testing/quick's property: it asks
// both faces for one input and reports whether they agree.
func checkSameAnswers(t *testing.T, method string, same func(t *testing.T, r *rig) any, edges []any, quickConfig *quick.Config) {
	t.Helper()
	r := startLimited(t, gateway.Config{}, smallLimits)
	property := reflect.ValueOf(same(t, r))
	for _, in := range edges {
		if !property.Call([]reflect.Value{reflect.ValueOf(in)})[0].Bool() {
			t.Errorf("%s(%#v): REST and gRPC differ", method, in)
		}
	}
	if err := quick.Check(property.Interface(), quickConfig); err != nil {
		t.Error(err)
	}
}

// edges are the lengths at the edges of any int32 and of limit.
func edges(limit int32) []any {
	var out []any
	for _, n := range append(edgeLengths, limit-1, limit, limit+1) {
		out = append(out, n)
	}
	return out
}

func sameItems(t *testing.T, r *rig) any {
	return func(length int32) bool {
		body, failed := r.restCall(fmt.Sprintf("/v1/items?length=%d", length))
		want, err := r.grpc.GetAll(context.Background(), &api.ApiRequest{Length: length})
		if !sameFailure(t, fmt.Sprintf("length %d", length), failed, err) || err != nil {
			return err != nil
		}
		var rest api.Items
		decode(t, body, &rest)
		if !proto.Equal(&rest, want) {
			t.Errorf("length %d: REST and gRPC differ", length)
			return false
		}
		return true
	}
}

func sameStream(t *testing.T, r *rig) any {
	return func(length int32) bool {
		rest, failed := restStream(t, r, length)
		want, err := grpcStream(t, r, length)
		if !sameFailure(t, fmt.Sprintf("length %d", length), failed, err) {
			return false
		}
		if len(rest.items) != len(want) {
			t.Errorf("length %d: REST gave %d items, gRPC %d", length, len(rest.items), len(want))
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
}

// restStream reads a REST stream: its items and how it failed, if it did.
func restStream(t *testing.T, r *rig, length int32) (results, *spb.Status) {
	resp := r.open(context.Background(), fmt.Sprintf("/v1/stream?length=%d", length))
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		rest := readResults(t, resp.Body)
		return rest, rest.err
	}
	body, _ := io.ReadAll(resp.Body)
	failed := &spb.Status{}
	decode(t, body, failed)
	return results{}, failed
}

// grpcStream reads a gRPC stream: the items before it ended, and how it
// failed, if it did.
func grpcStream(t *testing.T, r *rig, length int32) ([]*api.Item, error) {
	stream, err := r.grpc.GetStream(context.Background(), &api.ApiRequest{Length: length})
	if err != nil {
		t.Fatal(err)
	}
	var items []*api.Item
	for {
		item, err := stream.Recv()
		if err == io.EOF {
			return items, nil
		}
		if err != nil || item == nil {
			return items, err
		}
		items = append(items, item)
	}
}

func sameHello(t *testing.T, r *rig) any {
	return func(name string) bool {
		body, failed := r.restCall("/v1/hello?name=" + url.QueryEscape(name))
		want, err := r.grpc.SayHello(context.Background(), &api.HelloRequest{Name: name})
		if !sameFailure(t, fmt.Sprintf("name %q", name), failed, err) || err != nil {
			return err != nil
		}
		var rest api.Hello
		decode(t, body, &rest)
		return proto.Equal(&rest, want)
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
func readResults(t testing.TB, body io.Reader) results {
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
