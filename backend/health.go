package backend

import (
	"context"
	"errors"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"
)

// healthService is grpc-go's health server with Watch calls that end when
// the server drains. grpc-go's Shutdown sends NOT_SERVING to watchers but
// leaves their streams open, and one open Watch would hold a graceful stop
// for its whole grace period.
type healthService struct {
	*health.Server
	draining  chan struct{}
	drainOnce sync.Once
}

func newHealthService() *healthService {
	return &healthService{Server: health.NewServer(), draining: make(chan struct{})}
}

var errDraining = errors.New("draining")

func (h *healthService) Watch(req *healthpb.HealthCheckRequest, stream healthpb.Health_WatchServer) error {
	ctx, cancel := context.WithCancelCause(stream.Context())
	defer cancel(nil)
	go func() {
		select {
		case <-h.draining:
			cancel(errDraining)
		case <-ctx.Done():
		}
	}()
	err := h.Server.Watch(req, watchStream{stream, ctx})
	if errors.Is(context.Cause(ctx), errDraining) {
		// Unavailable is what a client sees of any server going away, and
		// what makes it look for another.
		return status.Error(codes.Unavailable, "the server is shutting down")
	}
	return err
}

// endWatches ends every Watch call, now and from now on.
func (h *healthService) endWatches() { h.drainOnce.Do(func() { close(h.draining) }) }

// watchStream is a Watch stream whose context also ends when the server
// drains.
type watchStream struct {
	healthpb.Health_WatchServer
	ctx context.Context
}

func (w watchStream) Context() context.Context { return w.ctx }
