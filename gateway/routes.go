package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/api/apigw"
)

// restRoute is one HTTP rule of api/gateway.yaml: the path that calls an RPC.
type restRoute struct {
	path string
	rpc  string // the method's name in api.proto, such as "getStream"
	// stream: the RPC streams its replies (api.Api_ServiceDesc.Streams).
	stream bool
}

// routes are read from the generated code, never listed by hand: the paths
// from the OpenAPI document that protoc-gen-openapiv2 makes of gateway.yaml,
// whether each streams from api.Api_ServiceDesc. A new RPC with a rule in
// gateway.yaml has its route, its metrics label and its deadline without
// an edit here.
var routes = mustReadRoutes(apigw.OpenAPI)

func mustReadRoutes(openAPI []byte) map[string]restRoute {
	rs, err := readRoutes(openAPI)
	if err != nil {
		panic(err) // the generated document is broken: a build error
	}
	return rs
}

func readRoutes(openAPI []byte) (map[string]restRoute, error) {
	var doc struct {
		Paths map[string]map[string]struct {
			OperationID string `json:"operationId"`
		} `json:"paths"`
	}
	if err := json.Unmarshal(openAPI, &doc); err != nil {
		return nil, fmt.Errorf("reading the OpenAPI document: %w", err)
	}
	streams := map[string]bool{}
	for _, s := range api.Api_ServiceDesc.Streams {
		streams[s.StreamName] = true
	}
	rs := map[string]restRoute{}
	for path, ops := range doc.Paths {
		for verb, op := range ops {
			// protoc-gen-openapiv2 names an operation SERVICE_METHOD.
			rpc, ok := strings.CutPrefix(op.OperationID, "Api_")
			if !ok || !strings.EqualFold(verb, http.MethodGet) {
				return nil, fmt.Errorf("the REST face serves GET only; %s %s (%s) is another", verb, path, op.OperationID)
			}
			rs[path] = restRoute{path: path, rpc: rpc, stream: streams[rpc]}
		}
	}
	return rs, nil
}

// routeOf returns the path that calls rpc, "" when there is none.
func routeOf(rpc string) string {
	for _, r := range routes {
		if r.rpc == rpc {
			return r.path
		}
	}
	return ""
}
