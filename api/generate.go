// Package api holds the wire contract (api.proto) and the Go code generated
// from it. Regenerate with: go generate ./api
package api

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative api.proto"

// The REST/JSON face: HTTP rules live in gateway.yaml, not in api.proto, so
// the proto stays the post's. api.swagger.json is the OpenAPI document the
// gateway serves at /v1/openapi.json.
//go:generate sh -c "protoc --plugin=protoc-gen-grpc-gateway=$(go tool -n protoc-gen-grpc-gateway) --grpc-gateway_out=. --grpc-gateway_opt=paths=source_relative,grpc_api_configuration=gateway.yaml api.proto"
//go:generate sh -c "protoc --plugin=protoc-gen-openapiv2=$(go tool -n protoc-gen-openapiv2) --openapiv2_out=. --openapiv2_opt=grpc_api_configuration=gateway.yaml,openapi_configuration=openapi.yaml,openapi_naming_strategy=simple api.proto"

// Reflection-free MarshalVT/UnmarshalVT/SizeVT methods, used by the gRPC
// codec in codec.go. They produce the same bytes as proto.Marshal.
//go:generate sh -c "protoc --plugin=protoc-gen-go-vtproto=$(go tool -n protoc-gen-go-vtproto) --go-vtproto_out=. --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+size api.proto"
