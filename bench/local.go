package bench

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/grpcplay/grpcplay/backend"
)

// Local is a backend and its REST face serving in this process on loopback
// ports, the default target of a run.
type Local struct {
	GRPCAddr string // host:port of the gRPC backend
	RESTURL  string // base URL of the REST/JSON face

	grpc     *backend.Server
	grpcDone chan error
	rest     restServer
}

// restServer is the part of the REST face's server that Local drives.
type restServer interface {
	Shutdown(ctx context.Context) error
}

// StartLocal serves the production backend and REST face on 127.0.0.1:0,
// both calling the same service implementation, as `grpcplay serve` does.
func StartLocal() (*Local, error) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	l := &Local{GRPCAddr: lis.Addr().String(), grpc: backend.NewServer(backend.Config{}), grpcDone: make(chan error, 1)}
	go func() { l.grpcDone <- l.grpc.Serve(lis) }()
	l.RESTURL, l.rest, err = startREST()
	if err != nil {
		return nil, errors.Join(err, l.Close())
	}
	return l, nil
}

// Close stops both servers; calls still in flight are cut off after a
// moment, since a run only closes when its cases are over.
func (l *Local) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var errs []error
	if l.rest != nil {
		errs = append(errs, l.rest.Shutdown(ctx))
	}
	l.grpc.Shutdown(ctx)
	errs = append(errs, <-l.grpcDone)
	return errors.Join(errs...)
}
