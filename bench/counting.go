package bench

import (
	"context"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"

	"github.com/grpcplay/grpcplay/api"
)

// Handler paths, as countingService tells them apart: which code called the
// Service.
const (
	HandlerGRPC    = "grpc-go"      // grpc-go's server, the generated handlers
	HandlerGateway = "grpc-gateway" // the REST face, gateway.Server
	HandlerPlain   = "net/http"     // the bench's net/http + encoding/json face
)

// countingService wraps the Service that every face of a run calls and
// counts each call by method and by the handler path that made it, so that
// a report shows each transport ran the same methods, once per request, and
// none answered from a cache of its own. It costs an atomic add and a map
// look-up per call, the same on every face.
type countingService struct {
	api.ApiServer
	mu     sync.Mutex
	counts map[string]*atomic.Int64 // by "method via path"
}

func newCountingService(svc api.ApiServer) *countingService {
	return &countingService{ApiServer: svc, counts: map[string]*atomic.Int64{}}
}

func (c *countingService) add(method, path string) {
	key := method + " via " + path
	c.mu.Lock()
	n, ok := c.counts[key]
	if !ok {
		n = new(atomic.Int64)
		c.counts[key] = n
	}
	c.mu.Unlock()
	n.Add(1)
}

// snapshot returns the counts so far.
func (c *countingService) snapshot() map[string]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int64, len(c.counts))
	for k, n := range c.counts {
		out[k] = n.Load()
	}
	return out
}

// unaryPath tells the gateway's in-process handlers, which annotate the
// context with their HTTP route, from grpc-go's, which set the method.
func unaryPath(ctx context.Context) string {
	if _, ok := runtime.HTTPPathPattern(ctx); ok {
		return HandlerGateway
	}
	if _, ok := grpc.Method(ctx); ok {
		return HandlerGRPC
	}
	return HandlerPlain
}

func (c *countingService) SayHello(ctx context.Context, req *api.HelloRequest) (*api.Hello, error) {
	c.add("SayHello", unaryPath(ctx))
	return c.ApiServer.SayHello(ctx, req)
}

func (c *countingService) GetAll(ctx context.Context, req *api.ApiRequest) (*api.Items, error) {
	c.add("GetAll", unaryPath(ctx))
	return c.ApiServer.GetAll(ctx, req)
}

func (c *countingService) GetStream(req *api.ApiRequest, stream grpc.ServerStreamingServer[api.Item]) error {
	path := HandlerGateway // the gateway's NDJSON writer, the one other caller
	switch _, isGRPC := grpc.Method(stream.Context()); {
	case isGRPC:
		path = HandlerGRPC
	default:
		if _, ok := stream.(*jsonLines); ok {
			path = HandlerPlain
		} else if t := fmt.Sprintf("%T", stream); t != "*gateway.ndjsonStream" {
			path = t
		}
	}
	c.add("GetStream", path)
	return c.ApiServer.GetStream(req, stream)
}

// diffCounts is after less before, without the zeros.
func diffCounts(before, after map[string]int64) map[string]int64 {
	out := maps.Clone(after)
	for k, v := range before {
		out[k] -= v
	}
	maps.DeleteFunc(out, func(_ string, v int64) bool { return v == 0 })
	return out
}

// handlerOf is the handler path each transport's calls must take.
func handlerOf(transport string) string {
	switch transport {
	case TransportGRPC:
		return HandlerGRPC
	case TransportRESTPlain:
		return HandlerPlain
	}
	return HandlerGateway
}

var methodNames = map[string]string{MethodHello: "SayHello", MethodItems: "GetAll", MethodStream: "GetStream"}

// SameWork checks, for each case whose Service calls were counted, that
// its face called the Service through its own handler at least once per
// answered call, and no more often than the calls in flight at a case's
// end (streams cut then reach the Service without an answer) allow: slack
// calls. It returns what it found wrong, one line a case, and how many
// cases it checked.
func (r *Report) SameWork(slack int64) (checked int, wrong []string) {
	for i := range r.Cases {
		c := &r.Cases[i]
		if c.Handlers == nil && c.Answered == 0 {
			continue
		}
		checked++
		key := methodNames[c.Method] + " via " + handlerOf(c.Transport)
		var total int64
		for _, n := range c.Handlers {
			total += n
		}
		if c.Handlers[key] < c.Answered || total > c.Answered+slack {
			wrong = append(wrong, fmt.Sprintf("%s: %d calls answered, the Service saw %v; want %d %s",
				c.Name, c.Answered, c.Handlers, c.Answered, key))
		}
	}
	return checked, wrong
}
