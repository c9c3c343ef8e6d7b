package bench

import (
	"context"
	"errors"
	"net"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/gateway"
)

// startREST serves the REST face on loopback, calling its own instance of
// the same service implementation as the gRPC backend, in-process.
func startREST() (string, restServer, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := gateway.New(gateway.Config{}, backend.NewService(backend.DefaultLimits))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(lis) }()
	return "http://" + lis.Addr().String(), &servedREST{srv: srv, done: done}, nil
}

type servedREST struct {
	srv  *gateway.Server
	done chan error
}

func (s *servedREST) Shutdown(ctx context.Context) error {
	err := s.srv.Shutdown(ctx)
	return errors.Join(err, <-s.done)
}
