package backend

import (
	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/encoding/proto"

	"github.com/grpcplay/grpcplay/api"
)

func registeredHandlers() (grpc.ServiceDesc, any, encoding.CodecV2) {
	return api.Api_ServiceDesc, NewService(DefaultLimits), encoding.GetCodecV2(proto.Name)
}
