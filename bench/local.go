package bench

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/gateway"
)

// Local is a backend and its REST face serving in this process on loopback
// ports, the default target of a run.
type Local struct {
	GRPCAddr string // host:port of the gRPC backend
	RESTURL  string // base URL of the REST/JSON face

	grpc     *backend.Server
	grpcDone chan error
	rest     *gateway.Server
	restDone chan error
}

// StartLocal serves the production backend and REST face on 127.0.0.1:0,
// both calling the same service implementation, as `grpcplay serve` does.
func StartLocal() (*Local, error) {
	grpcLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	restLis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, errors.Join(err, grpcLis.Close())
	}
	// The servers' limits on calls in flight protect a shared server; here
	// they would hold back or turn away the bench's own workers, which all
	// share one gRPC connection.
	grpcSrv := backend.New(backend.Config{MaxConcurrentStreams: MaxConcurrency})
	restCfg := gateway.Config{MaxInFlight: MaxConcurrency, MaxStreams: MaxConcurrency, MaxStreamsPerClient: MaxConcurrency}
	l := &Local{
		GRPCAddr: grpcLis.Addr().String(),
		RESTURL:  "http://" + restLis.Addr().String(),
		grpc:     grpcSrv,
		grpcDone: make(chan error, 1),
		rest:     gateway.New(restCfg, grpcSrv.Service()),
		restDone: make(chan error, 1),
	}
	go func() { l.grpcDone <- l.grpc.Serve(grpcLis) }()
	go func() { l.restDone <- l.rest.Serve(restLis) }()
	return l, nil
}

// Close stops both servers; calls still in flight are cut off after a
// moment, since a run only closes when its cases are over.
func (l *Local) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	errs := []error{l.rest.Shutdown(ctx)}
	l.grpc.Shutdown(ctx)
	errs = append(errs, <-l.restDone, <-l.grpcDone)
	return errors.Join(errs...)
}
