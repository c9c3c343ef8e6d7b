package interop_test

import (
	"bytes"
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/keepalive"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/client"
)

// The premise of client.DefaultKeepalive: the post's Python server (gRPC C
// core) sends GOAWAY "too_many_pings" to a client that pings a call in
// flight every 10 s, the most often grpc-go allows, where our backend would
// accept it. So the default pings every 5 min, C core's minimum.
func TestPostServerRefusesFrequentPings(t *testing.T) {
	t.Parallel()
	addr := startPostServer(t)
	goAway := make(chan struct{})
	c, err := client.New(addr, client.WithDialOptions(
		grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
			if err != nil {
				return nil, err
			}
			return &goAwayConn{Conn: conn, seen: goAway}, nil
		}),
		grpc.WithKeepaliveParams(keepalive.ClientParameters{Time: 10 * time.Second, Timeout: 5 * time.Second})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	// A long stream that is not read goes quiet once flow control fills,
	// and a quiet call is what keepalive pings.
	stream, err := api.NewApiClient(c.Conn()).GetStream(ctx, &api.ApiRequest{Length: 10_000_000})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-goAway:
	case <-ctx.Done():
		t.Fatal("no GOAWAY too_many_pings within 2 minutes of pings")
	}
	// The call in flight is lost with the connection.
	for {
		if _, err := stream.Recv(); err != nil {
			t.Logf("the stream ended with %v", err)
			return
		}
	}
}

// goAwayConn closes seen when the server's bytes carry the debug data of a
// GOAWAY for too many pings.
type goAwayConn struct {
	net.Conn
	seen chan struct{}
	tail []byte
	once sync.Once
}

func (c *goAwayConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	const reason = "too_many_pings"
	c.tail = append(c.tail, p[:n]...)
	if bytes.Contains(c.tail, []byte(reason)) {
		c.once.Do(func() { close(c.seen) })
	}
	if len(c.tail) > len(reason) {
		c.tail = c.tail[len(c.tail)-len(reason):]
	}
	return n, err
}
