// Package api holds the wire contract (api.proto) and the Go code generated
// from it. Regenerate with: go generate ./api
package api

// buf.gen.yaml lists the plugins, each pinned in tools/go.mod with buf
// itself, so that regenerating needs only the Go toolchain.
//go:generate go tool -modfile=../tools/go.mod buf generate

// grpc-gateway's standalone mode names its package after api.proto's Go
// package; apigw is its own package, named so, so that programs that import
// only api (the client) link none of grpc-gateway.
//go:generate sh -c "sed -e 's/^package api$/package apigw/' -e 's/^Package api is/Package apigw is/' apigw/api.pb.gw.go > apigw/api.pb.gw.go.tmp && mv apigw/api.pb.gw.go.tmp apigw/api.pb.gw.go"
