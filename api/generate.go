// Package api holds the wire contract (api.proto) and the Go code generated
// from it. Regenerate with: go generate ./api
package api

//go:generate sh -c "protoc --plugin=protoc-gen-go=$(go tool -n protoc-gen-go) --plugin=protoc-gen-go-grpc=$(go tool -n protoc-gen-go-grpc) --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative api.proto"

// Reflection-free MarshalVT/UnmarshalVT/SizeVT methods, used by the gRPC
// codec in codec.go. They produce the same bytes as proto.Marshal.
//go:generate sh -c "protoc --plugin=protoc-gen-go-vtproto=$(go tool -n protoc-gen-go-vtproto) --go-vtproto_out=. --go-vtproto_opt=paths=source_relative,features=marshal+unmarshal+size api.proto"
