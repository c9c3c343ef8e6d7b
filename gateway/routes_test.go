package gateway

import (
	"testing"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/api/apigw"
)

// The routes are read from the generated OpenAPI document, and whether
// each streams from api.Api_ServiceDesc. The post's three routes are
// checked as they are; beyond them, every RPC must have exactly one route,
// so an RPC added without a REST rule fails here by name.
func TestRoutesComeFromTheGeneratedCode(t *testing.T) {
	posts := map[string]restRoute{
		"/v1/hello":  {path: "/v1/hello", rpc: "sayHello"},
		"/v1/items":  {path: "/v1/items", rpc: "getAll"},
		"/v1/stream": {path: "/v1/stream", rpc: "getStream", stream: true},
	}
	for path, w := range posts {
		if routes[path] != w {
			t.Errorf("routes[%q] = %+v, want %+v", path, routes[path], w)
		}
	}
	served := map[string]int{}
	for _, r := range routes {
		served[r.rpc]++
	}
	var rpcs []string
	for _, m := range api.Api_ServiceDesc.Methods {
		rpcs = append(rpcs, m.MethodName)
	}
	for _, s := range api.Api_ServiceDesc.Streams {
		rpcs = append(rpcs, s.StreamName)
	}
	for _, rpc := range rpcs {
		if served[rpc] != 1 {
			t.Errorf("RPC %s has %d REST routes, want 1: add its rule to api/gateway.yaml, then go generate ./api", rpc, served[rpc])
		}
		delete(served, rpc)
	}
	for rpc := range served {
		t.Errorf("a route calls %q, which api.Api_ServiceDesc does not have", rpc)
	}
	if _, err := readRoutes([]byte(`{"paths":{"/v1/hello":{"post":{"operationId":"Api_sayHello"}}}}`)); err == nil {
		t.Error("a POST rule was read without an error; the REST face serves GET only")
	}
	if _, err := readRoutes(apigw.OpenAPI[:10]); err == nil {
		t.Error("a truncated document was read without an error")
	}
}
