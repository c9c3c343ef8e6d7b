package frontend

import (
	"context"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"

	"google.golang.org/grpc"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// pageCalls are the RPCs the page makes (loadIndex), in the page's order.
// The tests that count the page's calls take the count from here, and
// TestPageCallsPassTheClientInterceptors names a call left out of it.
var pageCalls = []string{"sayHello", "getAll", "getStream"}

// fullMethod is rpc's name on the wire, such as "/api.Api/sayHello".
func fullMethod(rpc string) string {
	return "/" + api.Api_ServiceDesc.ServiceName + "/" + rpc
}

// startPartial serves api.Api on loopback with only the named RPCs, as a
// backend older than the page, or the post's Python server lacking a newer
// RPC, does: gRPC answers the others Unimplemented.
func startPartial(t *testing.T, methods ...string) string {
	t.Helper()
	desc := api.Api_ServiceDesc
	desc.Methods = slices.DeleteFunc(slices.Clone(desc.Methods), func(m grpc.MethodDesc) bool {
		return !slices.Contains(methods, m.MethodName)
	})
	desc.Streams = slices.DeleteFunc(slices.Clone(desc.Streams), func(s grpc.StreamDesc) bool {
		return !slices.Contains(methods, s.StreamName)
	})
	srv := grpc.NewServer()
	srv.RegisterService(&desc, backend.NewService(backend.DefaultLimits))
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(lis) }()
	t.Cleanup(func() { srv.Stop(); <-done })
	return lis.Addr().String()
}

// The page shows what the backend offers and says what it does not, with
// status 200.
func TestPageDegradesWithoutAnRPC(t *testing.T) {
	tests := []struct {
		offered []string
		shown   []string // what the page must contain
		missing []string // what it must not
	}{
		{
			offered: []string{"sayHello"},
			shown: []string{`<h1 id="greeting">Hello Gonzalo!</h1>`,
				`id="all-note">This backend does not offer getAll.<`, `id="stream-note">This backend does not offer getStream.<`},
			missing: []string{`id="all-count"`, `id="stream-count"`, `<td class="id">`},
		},
		{
			offered: []string{"getAll", "getStream"},
			shown: []string{`id="greeting-note">This backend does not offer sayHello.<`,
				`id="all-count">10 items<`, `id="stream-count">5 items<`},
			missing: []string{`id="greeting"`},
		},
		{
			offered: []string{"sayHello", "getAll"},
			shown: []string{`<h1 id="greeting">Hello Gonzalo!</h1>`, `id="all-count">10 items<`,
				`id="stream-note">This backend does not offer getStream.<`},
			missing: []string{`id="stream-count"`, "does not offer sayHello", "does not offer getAll"},
		},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.offered, "+"), func(t *testing.T) {
			ts := newFrontend(t, Config{}, testkit.NewClient(t, startPartial(t, tt.offered...)))
			resp, body := testkit.Get(t, ts.URL+"/")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d, want 200:\n%s", resp.StatusCode, body)
			}
			for _, s := range tt.shown {
				if !strings.Contains(body, s) {
					t.Errorf("page lacks %s:\n%s", s, body)
				}
			}
			for _, s := range tt.missing {
				if strings.Contains(body, s) {
					t.Errorf("page shows %s:\n%s", s, body)
				}
			}
		})
	}
}

// Every call the page makes passes the client's interceptors: the unary
// ones for the unary RPCs, the stream ones for the streaming ones; and the
// page makes just the calls pageCalls lists.
func TestPageCallsPassTheClientInterceptors(t *testing.T) {
	var mu sync.Mutex
	var unary, streams []string
	b := testkit.NewClient(t, backendtest.Start(t, backend.Config{}).Addr, client.WithDialOptions(
		grpc.WithUnaryInterceptor(func(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
			mu.Lock()
			unary = append(unary, method)
			mu.Unlock()
			return invoker(ctx, method, req, reply, cc, opts...)
		}),
		grpc.WithStreamInterceptor(func(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
			mu.Lock()
			streams = append(streams, method)
			mu.Unlock()
			return streamer(ctx, desc, cc, method, opts...)
		})))
	ts := newFrontend(t, Config{}, b)
	if resp, body := testkit.Get(t, ts.URL+"/"); resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d:\n%s", resp.StatusCode, body)
	}
	mu.Lock()
	defer mu.Unlock()
	var wantUnary, wantStreams []string
	for _, m := range api.Api_ServiceDesc.Methods {
		if slices.Contains(pageCalls, m.MethodName) {
			wantUnary = append(wantUnary, fullMethod(m.MethodName))
		}
	}
	for _, s := range api.Api_ServiceDesc.Streams {
		if slices.Contains(pageCalls, s.StreamName) {
			wantStreams = append(wantStreams, fullMethod(s.StreamName))
		}
	}
	for _, called := range slices.Concat(unary, streams) {
		if !slices.Contains(slices.Concat(wantUnary, wantStreams), called) {
			t.Errorf("the page calls %s, which pageCalls does not list: add it there", called)
		}
	}
	for _, rpc := range pageCalls {
		if !slices.Contains(slices.Concat(unary, streams), fullMethod(rpc)) {
			t.Errorf("pageCalls lists %s, which the page does not call", rpc)
		}
	}
	slices.Sort(unary)
	slices.Sort(wantUnary)
	if !slices.Equal(unary, wantUnary) {
		t.Errorf("unary interceptor saw %v, want %v", unary, wantUnary)
	}
	slices.Sort(streams)
	slices.Sort(wantStreams)
	if !slices.Equal(streams, wantStreams) {
		t.Errorf("stream interceptor saw %v, want %v", streams, wantStreams)
	}
}
