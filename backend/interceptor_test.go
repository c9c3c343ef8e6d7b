package backend

import (
	"context"
	"log/slog"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A panic in one handler becomes that call's Internal error, without its
// details, instead of ending every call in the process.
func TestInterceptorsTurnPanicsIntoInternal(t *testing.T) {
	s := &Server{log: slog.New(slog.DiscardHandler)}
	_, err := s.unaryInterceptor(context.Background(), nil, &grpc.UnaryServerInfo{FullMethod: "/api.Api/sayHello"},
		func(context.Context, any) (any, error) { panic("bug") })
	if status.Code(err) != codes.Internal || status.Convert(err).Message() != "internal error" {
		t.Fatalf("unary panic gave %v, want Internal \"internal error\"", err)
	}
	err = s.streamInterceptor(nil, fakeStream{}, &grpc.StreamServerInfo{FullMethod: "/api.Api/getStream"},
		func(any, grpc.ServerStream) error { panic("bug") })
	if status.Code(err) != codes.Internal {
		t.Fatalf("stream panic gave %v, want Internal", err)
	}
}

type fakeStream struct{ grpc.ServerStream }

func (fakeStream) Context() context.Context { return context.Background() }
