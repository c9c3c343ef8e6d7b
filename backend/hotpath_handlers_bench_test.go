package backend

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"

	"github.com/grpcplay/grpcplay/api"
)

// registeredHandlers returns what NewServer registers and encodes with.
func registeredHandlers() (grpc.ServiceDesc, any, encoding.CodecV2) {
	return *encodedServiceDesc(), NewService(DefaultLimits), api.Codec{}
}
