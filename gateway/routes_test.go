package gateway

import (
	"testing"

	"github.com/grpcplay/grpcplay/api/apigw"
)

// The routes are read from the generated OpenAPI document, and whether
// each streams from api.Api_ServiceDesc.
func TestRoutesComeFromTheGeneratedCode(t *testing.T) {
	want := map[string]restRoute{
		"/v1/hello":  {path: "/v1/hello", rpc: "sayHello"},
		"/v1/items":  {path: "/v1/items", rpc: "getAll"},
		"/v1/stream": {path: "/v1/stream", rpc: "getStream", stream: true},
	}
	if len(routes) != len(want) {
		t.Errorf("routes = %v, want %v", routes, want)
	}
	for path, w := range want {
		if routes[path] != w {
			t.Errorf("routes[%q] = %+v, want %+v", path, routes[path], w)
		}
	}
	if _, err := readRoutes([]byte(`{"paths":{"/v1/hello":{"post":{"operationId":"Api_sayHello"}}}}`)); err == nil {
		t.Error("a POST rule was read without an error; the REST face serves GET only")
	}
	if _, err := readRoutes(apigw.OpenAPI[:10]); err == nil {
		t.Error("a truncated document was read without an error")
	}
}
