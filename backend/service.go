// Package backend implements the api.Api gRPC service and the server that
// hosts it, with health, reflection, keepalive and graceful shutdown.
package backend

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
)

// Limits bound what one call may ask for. They exist so that a single request
// can neither build a reply over gRPC's 4 MiB message limit nor pin a server
// goroutine with an unbounded stream.
type Limits struct {
	// MaxItems caps getAll's length. The reply is built in memory and sent as
	// one message, so the cap keeps it well under 4 MiB.
	MaxItems int32
	// MaxStreamItems caps getStream's length. Items are made as they are sent,
	// so this only bounds how long one stream can run.
	MaxStreamItems int32
	// MaxNameBytes caps sayHello's name.
	MaxNameBytes int
}

// MaxItemsCeiling is the largest MaxItems whose getAll reply (about 21 bytes
// an item) still fits api.MaxReplyBytes, the 4 MiB both the server's send
// limit and the client's receive limit are set to.
const MaxItemsCeiling = 150_000

// Validate says what is wrong with limits that no call could satisfy.
func (l Limits) Validate() error {
	var errs []error
	if l.MaxItems < 1 || l.MaxItems > MaxItemsCeiling {
		errs = append(errs, fmt.Errorf("max items %d must be between 1 and %d, so that getAll's reply fits gRPC's 4 MiB message limit", l.MaxItems, MaxItemsCeiling))
	}
	if l.MaxStreamItems < 1 {
		errs = append(errs, fmt.Errorf("max stream items %d must be at least 1", l.MaxStreamItems))
	}
	if l.MaxNameBytes < 1 || l.MaxNameBytes > maxRecvBytes/2 {
		errs = append(errs, fmt.Errorf("max name bytes %d must be between 1 and %d, under the server's request size limit", l.MaxNameBytes, maxRecvBytes/2))
	}
	return errors.Join(errs...)
}

// DefaultLimits keeps getAll's reply near 2 MiB (about 21 bytes an item) and
// lets a stream run to ten million items.
var DefaultLimits = Limits{
	MaxItems:       100_000,
	MaxStreamItems: 10_000_000,
	MaxNameBytes:   1024,
}

// Service implements api.ApiServer with the post's outputs.
type Service struct {
	api.UnimplementedApiServer
	limits Limits
}

// NewService returns a Service that refuses requests beyond limits.
func NewService(limits Limits) *Service {
	return &Service{limits: limits}
}

// SayHello greets the caller by name.
func (s *Service) SayHello(_ context.Context, req *api.HelloRequest) (*api.Hello, error) {
	if err := s.checkName(req.GetName()); err != nil {
		return nil, err
	}
	return &api.Hello{Message: "Hello " + req.GetName() + "!"}, nil
}

// checkName refuses a name over the limit, and one that is not UTF-8: proto3
// strings must be, and the server's codec (internal/vtcodec) does not check.
func (s *Service) checkName(name string) error {
	if n := len(name); n > s.limits.MaxNameBytes {
		return status.Errorf(codes.InvalidArgument,
			"name is %d bytes long; the limit is %d bytes", n, s.limits.MaxNameBytes)
	}
	if !utf8.ValidString(name) {
		return status.Error(codes.InvalidArgument, "name is not valid UTF-8")
	}
	return nil
}

// GetAll returns the items 1..length in one message.
func (s *Service) GetAll(_ context.Context, req *api.ApiRequest) (*api.Items, error) {
	n := req.GetLength()
	if err := checkLength(n, s.limits.MaxItems); err != nil {
		return nil, err
	}
	items := make([]*api.Item, n)
	for i := range items {
		items[i] = NewItem(int32(i + 1))
	}
	return &api.Items{Items: items}, nil
}

// GetStream sends the items 1..length one message each. Each item is made
// just before it is sent, so memory stays flat whatever the length, and the
// loop ends as soon as the caller cancels or its deadline passes.
func (s *Service) GetStream(req *api.ApiRequest, stream grpc.ServerStreamingServer[api.Item]) error {
	n := req.GetLength()
	if err := checkLength(n, s.limits.MaxStreamItems); err != nil {
		return err
	}
	done := stream.Context().Done()
	for i := int32(1); i <= n; i++ {
		// Send only notices cancellation once flow control blocks it; a fast
		// reader that goes away would otherwise keep the loop running.
		select {
		case <-done:
			return status.FromContextError(stream.Context().Err()).Err()
		default:
		}
		if err := stream.Send(NewItem(i)); err != nil {
			return err
		}
	}
	return nil
}

// NewItem returns item number id as the post defines it.
func NewItem(id int32) *api.Item {
	return &api.Item{Id: id, Name: "name " + strconv.Itoa(int(id))}
}

func checkLength(n, limit int32) error {
	if n < 0 || n > limit {
		return status.Error(codes.InvalidArgument, fmt.Sprintf(
			"length %d is out of range: it must be between 0 and %d", n, limit))
	}
	return nil
}
