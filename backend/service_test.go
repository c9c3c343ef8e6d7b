package backend_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"
	"google.golang.org/grpc/test/bufconn"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var testLimits = backend.Limits{MaxItems: 100, MaxStreamItems: 10_000_000, MaxNameBytes: 1024}

// handlerResult is how a stream handler ended, seen from the server side.
type handlerResult struct {
	method string
	err    error
}

// newBufconnService serves the bare Service in-process and reports every
// stream handler's return on the returned channel.
func newBufconnService(t *testing.T, limits backend.Limits) (api.ApiClient, <-chan handlerResult) {
	t.Helper()
	lis := bufconn.Listen(1 << 20)
	ended := make(chan handlerResult, 16)
	srv := grpc.NewServer(grpc.StreamInterceptor(
		func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
			err := handler(srv, ss)
			ended <- handlerResult{info.FullMethod, err}
			return err
		}))
	api.RegisterApiServer(srv, backend.NewService(limits))
	served := make(chan struct{})
	go func() { defer close(served); _ = srv.Serve(lis) }()
	conn, err := grpc.NewClient("passthrough:///bufnet",
		grpc.WithContextDialer(func(ctx context.Context, _ string) (net.Conn, error) { return lis.DialContext(ctx) }),
		grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn.Close()
		srv.Stop()
		<-served
	})
	return api.NewApiClient(conn), ended
}

func wantItems(t *testing.T, got []*api.Item, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("got %d items, want %d", len(got), n)
	}
	for i, it := range got {
		if want := fmt.Sprintf("name %d", i+1); it.GetId() != int32(i+1) || it.GetName() != want {
			t.Fatalf("item %d = {%d %q}, want {%d %q}", i, it.GetId(), it.GetName(), i+1, want)
		}
	}
}

func wantCode(t *testing.T, err error, code codes.Code, msgPart string) {
	t.Helper()
	if status.Code(err) != code {
		t.Fatalf("got error %v, want code %s", err, code)
	}
	if msgPart != "" && !strings.Contains(status.Convert(err).Message(), msgPart) {
		t.Fatalf("error message %q does not mention %q", status.Convert(err).Message(), msgPart)
	}
}

func TestSayHello(t *testing.T) {
	c, _ := newBufconnService(t, testLimits)
	tests := []struct {
		name    string
		want    string
		code    codes.Code
		msgPart string
	}{
		{name: "Gonzalo", want: "Hello Gonzalo!"},
		{name: "", want: "Hello !"},
		{name: "José 🌍", want: "Hello José 🌍!"},
		{name: strings.Repeat("a", 1024), want: "Hello " + strings.Repeat("a", 1024) + "!"},
		{name: strings.Repeat("a", 1025), code: codes.InvalidArgument, msgPart: "limit is 1024 bytes"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("len%d", len(tt.name)), func(t *testing.T) {
			reply, err := c.SayHello(t.Context(), &api.HelloRequest{Name: tt.name})
			if tt.code != codes.OK {
				wantCode(t, err, tt.code, tt.msgPart)
				return
			}
			if err != nil || reply.GetMessage() != tt.want {
				t.Fatalf("SayHello(%q) = %q, %v; want %q", tt.name, reply.GetMessage(), err, tt.want)
			}
		})
	}
}

// lengthCases run against both getAll and getStream, with the limit of each.
func lengthCases(limit int32) []struct {
	length int32
	code   codes.Code
} {
	return []struct {
		length int32
		code   codes.Code
	}{
		{0, codes.OK},
		{1, codes.OK},
		{10, codes.OK},
		{-1, codes.InvalidArgument},
		{-2147483648, codes.InvalidArgument},
		{limit, codes.OK},
		{limit + 1, codes.InvalidArgument},
	}
}

func TestGetAll(t *testing.T) {
	c, _ := newBufconnService(t, testLimits)
	for _, tt := range lengthCases(testLimits.MaxItems) {
		t.Run(fmt.Sprint(tt.length), func(t *testing.T) {
			reply, err := c.GetAll(t.Context(), &api.ApiRequest{Length: tt.length})
			if tt.code != codes.OK {
				wantCode(t, err, tt.code, fmt.Sprintf("between 0 and %d", testLimits.MaxItems))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantItems(t, reply.GetItems(), int(tt.length))
		})
	}
}

func TestGetStream(t *testing.T) {
	limits := testLimits
	limits.MaxStreamItems = 1000
	c, _ := newBufconnService(t, limits)
	for _, tt := range lengthCases(limits.MaxStreamItems) {
		t.Run(fmt.Sprint(tt.length), func(t *testing.T) {
			got, err := collect(c.GetStream(t.Context(), &api.ApiRequest{Length: tt.length}))
			if tt.code != codes.OK {
				wantCode(t, err, tt.code, fmt.Sprintf("between 0 and %d", limits.MaxStreamItems))
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			wantItems(t, got, int(tt.length))
		})
	}
}

func collect(stream grpc.ServerStreamingClient[api.Item], err error) ([]*api.Item, error) {
	if err != nil {
		return nil, err
	}
	var items []*api.Item
	for {
		it, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return items, nil
		}
		if err != nil {
			return items, err
		}
		items = append(items, it)
	}
}

// waitEnded waits for the server's stream handler to return; the bound is a
// failure timeout, not a synchronisation delay.
func waitEnded(t *testing.T, ended <-chan handlerResult) handlerResult {
	t.Helper()
	select {
	case r := <-ended:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the server's stream handler did not return")
		return handlerResult{}
	}
}

func TestGetStreamStopsWhenClientCancels(t *testing.T) {
	c, ended := newBufconnService(t, testLimits)
	ctx, cancel := context.WithCancel(t.Context())
	stream, err := c.GetStream(ctx, &api.ApiRequest{Length: testLimits.MaxStreamItems})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	cancel()
	r := waitEnded(t, ended)
	if r.err == nil {
		t.Fatal("handler returned nil after the client cancelled a 10M-item stream")
	}
	wantCode(t, r.err, codes.Canceled, "")
}

func TestGetStreamStopsAtDeadline(t *testing.T) {
	c, ended := newBufconnService(t, testLimits)
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	// The client reads nothing, so the server fills the flow-control window
	// and blocks in Send until the deadline passes.
	stream, err := c.GetStream(ctx, &api.ApiRequest{Length: testLimits.MaxStreamItems})
	if err != nil {
		t.Fatal(err)
	}
	r := waitEnded(t, ended)
	if code := status.Code(r.err); code != codes.DeadlineExceeded && code != codes.Canceled {
		t.Fatalf("handler ended with %v, want DeadlineExceeded", r.err)
	}
	_, err = collect(stream, nil)
	wantCode(t, err, codes.DeadlineExceeded, "")
}

// Items are made as they are sent, so the live heap must not grow with the
// number of items already streamed.
func TestGetStreamMemoryIsFlat(t *testing.T) {
	c, _ := newBufconnService(t, testLimits)
	stream, err := c.GetStream(t.Context(), &api.ApiRequest{Length: 50_000})
	if err != nil {
		t.Fatal(err)
	}
	heapAt := map[int32]uint64{}
	for {
		it, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if id := it.GetId(); id == 5_000 || id == 48_000 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			heapAt[id] = ms.HeapAlloc
		}
	}
	early, late := heapAt[5_000], heapAt[48_000]
	// 43,000 more items would hold about 2.5 MiB if they were kept.
	if late > early+1<<20 {
		t.Fatalf("live heap grew from %d to %d bytes while streaming", early, late)
	}
}

// The ceiling must keep getAll's reply within the send and receive limits,
// or the largest allowed call would fail.
func TestMaxItemsCeilingFitsOneMessage(t *testing.T) {
	reply, err := backend.NewService(backend.Limits{MaxItems: backend.MaxItemsCeiling}).
		GetAll(t.Context(), &api.ApiRequest{Length: backend.MaxItemsCeiling})
	if err != nil {
		t.Fatal(err)
	}
	if size := proto.Size(reply); size > api.MaxReplyBytes {
		t.Fatalf("getAll(%d) is %d bytes, over api.MaxReplyBytes (%d)", backend.MaxItemsCeiling, size, api.MaxReplyBytes)
	}
}

func TestLimitsValidate(t *testing.T) {
	if err := backend.DefaultLimits.Validate(); err != nil {
		t.Fatalf("default limits: %v", err)
	}
	for _, tt := range []struct {
		limits backend.Limits
		want   string
	}{
		{backend.Limits{MaxItems: 0, MaxStreamItems: 1, MaxNameBytes: 1}, "max items 0 must be between 1 and 150000"},
		{backend.Limits{MaxItems: 150_001, MaxStreamItems: 1, MaxNameBytes: 1}, "4 MiB"},
		{backend.Limits{MaxItems: 1, MaxStreamItems: -1, MaxNameBytes: 1}, "max stream items -1 must be at least 1"},
		{backend.Limits{MaxItems: 1, MaxStreamItems: 1, MaxNameBytes: 1 << 20}, "max name bytes 1048576"},
	} {
		err := tt.limits.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Validate(%+v) = %v, want it to say %q", tt.limits, err, tt.want)
		}
	}
}
