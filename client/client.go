// Package client is the Go client library for api.Api: the post's ApiClient,
// with one long-lived connection, default deadlines and a streaming iterator.
package client

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"iter"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/keepalive"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/vtcodec"
)

// Item is one item of getAll or getStream.
type Item = api.Item

// Default deadlines for calls whose context has none. A stream gets longer
// because ten million items take seconds to send.
const (
	DefaultTimeout       = 10 * time.Second
	DefaultStreamTimeout = 5 * time.Minute
)

// serviceConfig spreads calls over every address the target resolves to and
// retries calls that never reached a server. All three RPCs only read, so a
// retry cannot do anything twice.
const serviceConfig = `{
  "loadBalancingConfig": [{"round_robin": {}}],
  "methodConfig": [{
    "name": [{"service": "api.Api"}],
    "retryPolicy": {
      "maxAttempts": 3,
      "initialBackoff": "0.1s",
      "maxBackoff": "1s",
      "backoffMultiplier": 2,
      "retryableStatusCodes": ["UNAVAILABLE"]
    }
  }]
}`

// DefaultKeepalive is how the client checks that a silent connection is still
// alive. Servers refuse pings that come too often: ours allows one every
// 10 s (backend.Config.KeepaliveMinTime), but gRPC servers in C core, such
// as the post's Python server, allow one every 5 min while calls run, or
// none at all on an idle connection, and answer a third early ping with
// GOAWAY "too_many_pings", which fails every call on the connection. So the
// client pings only while a call is in flight and nothing has arrived for
// 5 min, which is safe against both. Idle connections are closed by our
// server instead (MaxConnectionAge). Setting Timeout also sets
// TCP_USER_TIMEOUT on Linux, so data left unacknowledged by a vanished peer
// fails the connection after 20 s rather than the kernel's 15 min.
var DefaultKeepalive = keepalive.ClientParameters{
	Time:                5 * time.Minute,
	Timeout:             20 * time.Second,
	PermitWithoutStream: false,
}

// Client calls api.Api over one connection. It is safe for concurrent use.
type Client struct {
	conn          *grpc.ClientConn
	api           api.ApiClient
	health        healthpb.HealthClient
	timeout       time.Duration
	streamTimeout time.Duration
	resolved      *resolvedAddrs
}

// Option changes how New connects or calls.
type Option func(*settings)

type settings struct {
	creds         credentials.TransportCredentials
	dialOptions   []grpc.DialOption
	timeout       time.Duration
	streamTimeout time.Duration
	dnsRefresh    dnsRefresh
}

// WithTimeout sets the deadline of unary calls whose context has none.
func WithTimeout(d time.Duration) Option {
	return func(s *settings) { s.timeout = d }
}

// WithStreamTimeout sets the deadline of streams whose context has none.
func WithStreamTimeout(d time.Duration) Option {
	return func(s *settings) { s.streamTimeout = d }
}

// WithTLS connects over TLS with cfg (see internal/tlsconfig) instead of
// plaintext. cfg.ServerName, when set, is the name verified in the server's
// certificate; otherwise it is the target's host.
func WithTLS(cfg *tls.Config) Option {
	return func(s *settings) { s.creds = credentials.NewTLS(cfg) }
}

// WithDialOptions adds gRPC dial options, such as transport credentials or
// interceptors. They apply after the defaults, so they win.
func WithDialOptions(opts ...grpc.DialOption) Option {
	return func(s *settings) { s.dialOptions = append(s.dialOptions, opts...) }
}

// New opens a connection to target, a gRPC target such as "localhost:50051"
// or "dns:///backend:50051". The connection is plaintext, like the post's,
// unless WithTLS is given. It is made lazily and
// re-established in the background, so New does not fail when the server is
// down; calls do.
func New(target string, opts ...Option) (*Client, error) {
	s := settings{creds: insecure.NewCredentials(), timeout: DefaultTimeout, streamTimeout: DefaultStreamTimeout}
	for _, o := range opts {
		o(&s)
	}
	resolved := &resolvedAddrs{}
	dial := append([]grpc.DialOption{
		grpc.WithTransportCredentials(s.creds),
		grpc.WithResolvers(resolved.builders(s.dnsRefresh.builder())...),
		grpc.WithDefaultServiceConfig(serviceConfig),
		grpc.WithKeepaliveParams(DefaultKeepalive),
		// getAll's largest allowed reply fits; a bigger one from some other
		// server fails with ResourceExhausted instead of using up memory.
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(api.MaxReplyBytes),
			// vtcodec decodes replies without protobuf's reflection; on the
			// wire it is the standard protobuf encoding. ForceCodecV2 is
			// experimental in grpc-go; no stable option picks a codec.
			grpc.ForceCodecV2(vtcodec.Codec{})),
		// gRPC's default reconnect backoff grows to two minutes; a frontend
		// should notice a returning backend within seconds.
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 100 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 3 * time.Second},
			MinConnectTimeout: 5 * time.Second,
		}),
	}, s.dialOptions...)
	conn, err := grpc.NewClient(target, dial...)
	if err != nil {
		return nil, err
	}
	return &Client{
		conn:          conn,
		api:           api.NewApiClient(conn),
		health:        healthpb.NewHealthClient(conn),
		timeout:       s.timeout,
		streamTimeout: s.streamTimeout,
		resolved:      resolved,
	}, nil
}

// Close closes the connection. Calls in flight fail with Canceled.
func (c *Client) Close() error {
	return c.conn.Close()
}

// Conn returns the underlying connection, for other services on the same server.
func (c *Client) Conn() *grpc.ClientConn {
	return c.conn
}

// SayHello returns the server's greeting for name.
func (c *Client) SayHello(ctx context.Context, name string) (string, error) {
	ctx, cancel := unaryDeadline(ctx, c.timeout)
	defer cancel()
	reply, err := c.api.SayHello(ctx, &api.HelloRequest{Name: name})
	if err != nil {
		return "", err
	}
	return reply.GetMessage(), nil
}

// GetAll returns the items 1..length.
func (c *Client) GetAll(ctx context.Context, length int32) ([]*Item, error) {
	ctx, cancel := unaryDeadline(ctx, c.timeout)
	defer cancel()
	reply, err := c.api.GetAll(ctx, &api.ApiRequest{Length: length})
	if err != nil {
		return nil, err
	}
	return reply.GetItems(), nil
}

// GetStream streams the items 1..length as they arrive. An error ends the
// sequence as its last element. Leaving the loop early cancels the stream,
// so the server stops sending.
func (c *Client) GetStream(ctx context.Context, length int32) iter.Seq2[*Item, error] {
	return func(yield func(*Item, error) bool) {
		ctx, cancel := withDefaultDeadline(ctx, c.streamTimeout)
		defer cancel()
		stream, err := c.api.GetStream(ctx, &api.ApiRequest{Length: length})
		if err != nil {
			yield(nil, err)
			return
		}
		for {
			item, err := stream.Recv()
			if errors.Is(err, io.EOF) {
				return
			}
			if err != nil {
				yield(nil, err)
				return
			}
			if !yield(item, nil) {
				return
			}
		}
	}
}

// Ready reports whether a server answers on the connection. A server without
// the health service (such as the post's Python server) counts as ready when
// it answers Unimplemented: it was reached.
func (c *Client) Ready(ctx context.Context) error {
	ctx, cancel := withDefaultDeadline(ctx, c.timeout)
	defer cancel()
	reply, err := c.health.Check(ctx, &healthpb.HealthCheckRequest{Service: api.Api_ServiceDesc.ServiceName})
	switch {
	case status.Code(err) == codes.Unimplemented:
		return nil
	case err != nil:
		return err
	case reply.GetStatus() != healthpb.HealthCheckResponse_SERVING:
		return status.Errorf(codes.Unavailable, "backend is %s", reply.GetStatus())
	}
	return nil
}

// withDefaultDeadline gives ctx a deadline d from now unless it has one.
// Its cancel ends what the context started, such as a stream left early.
func withDefaultDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}

// unaryDeadline is withDefaultDeadline for a unary call, which has ended
// when it returns: a context with a deadline is used as it is, since a
// derived one to cancel would cost allocations and nothing else.
func unaryDeadline(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, d)
}
