package client_test

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// namedServer answers SayHello with its own name, so that a test sees which
// backend served each call.
type namedServer struct {
	api.UnimplementedApiServer
	name string
}

func (s namedServer) SayHello(context.Context, *api.HelloRequest) (*api.Hello, error) {
	return &api.Hello{Message: s.name}, nil
}

// fakeDNS is a name's answer that a test changes as it goes. Its addresses
// are documentation addresses (RFC 5737), each mapped by dial to a real
// backend on its own loopback port: DNS gives one port for every address.
type fakeDNS struct {
	mu      sync.Mutex
	answer  []string
	err     error
	lookups int
	backend map[string]string // "192.0.2.N:50051" -> the backend's loopback address
}

const fakePort = "50051"

// startBackends starts n named backends, b1..bn, at 192.0.2.1..n.
func startBackends(t *testing.T, n int) *fakeDNS {
	d := &fakeDNS{backend: map[string]string{}}
	for i := 1; i <= n; i++ {
		srv := grpc.NewServer()
		api.RegisterApiServer(srv, namedServer{name: fmt.Sprint("b", i)})
		d.backend[net.JoinHostPort(fmt.Sprint("192.0.2.", i), fakePort)] = serve(t, srv)
	}
	return d
}

// set makes the name resolve to backends b<i> for each i in nums.
func (d *fakeDNS) set(nums ...int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.answer, d.err = nil, nil
	for _, i := range nums {
		d.answer = append(d.answer, fmt.Sprint("192.0.2.", i))
	}
}

func (d *fakeDNS) fail(err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.err = err
}

func (d *fakeDNS) lookupCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lookups
}

func (d *fakeDNS) lookupHost(_ context.Context, host string) ([]string, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.lookups++
	if host != "backend.test" {
		return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
	}
	return slices.Clone(d.answer), d.err
}

func (d *fakeDNS) dial(ctx context.Context, addr string) (net.Conn, error) {
	real, ok := d.backend[addr]
	if !ok {
		return nil, fmt.Errorf("no backend at %s", addr)
	}
	var dialer net.Dialer
	return dialer.DialContext(ctx, "tcp", real)
}

func (d *fakeDNS) client(t *testing.T) *client.Client {
	return testkit.NewClient(t, "dns:///backend.test:"+fakePort,
		client.WithDNSRefreshLookup(10*time.Millisecond, d.lookupHost),
		client.WithDialOptions(grpc.WithContextDialer(d.dial)))
}

// callsPerBackend makes n calls and counts them by the backend that served
// each.
func callsPerBackend(t *testing.T, c *client.Client, n int) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for range n {
		name, err := c.SayHello(t.Context(), "x")
		if err != nil {
			t.Fatal(err)
		}
		counts[name]++
	}
	return counts
}

func resolvedTo(c *client.Client, nums ...int) error {
	var want []string
	for _, i := range nums {
		want = append(want, net.JoinHostPort(fmt.Sprint("192.0.2.", i), fakePort))
	}
	got := c.ResolvedAddrs()
	return testkit.Failf(slices.Equal(got, want), "resolved addresses %v, want %v", got, want)
}

func TestDNSRefreshSpreadsCallsOverNewAddressesAndDropsGoneOnes(t *testing.T) {
	dns := startBackends(t, 3)
	dns.set(1)
	c := dns.client(t)
	if got := callsPerBackend(t, c, 10); got["b1"] != 10 {
		t.Fatalf("calls per backend with one address: %v", got)
	}

	// Two backends join: every call is seen by the client's connections,
	// none of which closes, yet the new ones take their share.
	dns.set(3, 1, 2)
	testkit.Eventually(t, 10*time.Second, func() error { return resolvedTo(c, 1, 2, 3) })
	testkit.Eventually(t, 10*time.Second, func() error {
		got := callsPerBackend(t, c, 30)
		return testkit.Failf(got["b1"] == 10 && got["b2"] == 10 && got["b3"] == 10,
			"calls per backend, 30 calls over three addresses: %v; want 10 each", got)
	})

	// One leaves: it gets no more calls.
	dns.set(1, 3)
	testkit.Eventually(t, 10*time.Second, func() error { return resolvedTo(c, 1, 3) })
	testkit.Eventually(t, 10*time.Second, func() error {
		got := callsPerBackend(t, c, 20)
		return testkit.Failf(got["b1"] == 10 && got["b3"] == 10, "calls per backend once b2 left: %v; want 10 each for b1 and b3", got)
	})
}

func TestDNSRefreshKeepsConnectionsThroughLookupErrors(t *testing.T) {
	dns := startBackends(t, 2)
	dns.set(1, 2)
	c := dns.client(t)
	testkit.Eventually(t, 10*time.Second, func() error {
		got := callsPerBackend(t, c, 10)
		return testkit.Failf(got["b1"] == 5 && got["b2"] == 5, "calls per backend: %v; want 5 each", got)
	})

	dns.fail(&net.DNSError{Err: "i/o timeout", Name: "backend.test", IsTimeout: true})
	// Two lookups from now, at least one has failed since the failure began.
	failing := dns.lookupCount()
	testkit.Eventually(t, 10*time.Second, func() error {
		return testkit.Failf(dns.lookupCount() >= failing+2, "%d lookups since DNS began failing", dns.lookupCount()-failing)
	})
	// Both addresses still take calls. (Not exactly 5 each: on a busy
	// machine a connection may be re-established meanwhile, and round_robin
	// skips it while it does.)
	if got := callsPerBackend(t, c, 10); got["b1"] == 0 || got["b2"] == 0 {
		t.Fatalf("calls per backend while DNS fails: %v; want both to serve", got)
	}
}

func TestDNSRefreshWithoutAddressesFailsCalls(t *testing.T) {
	dns := startBackends(t, 1)
	dns.set(1)
	c := dns.client(t)
	if _, err := c.SayHello(t.Context(), "x"); err != nil {
		t.Fatal(err)
	}
	// A headless Service whose pods are all gone: the name does not exist.
	dns.set()
	testkit.Eventually(t, 10*time.Second, func() error {
		ctx, cancel := context.WithTimeout(t.Context(), time.Second)
		defer cancel()
		_, err := c.SayHello(ctx, "x")
		return testkit.Failf(status.Code(err) == codes.Unavailable, "SayHello with no address = %v, want Unavailable", err)
	})
}

// The stdlib's resolver, on a name every machine has; and targets that the
// option leaves to grpc-go's resolver.
func TestDNSRefreshWithSystemResolver(t *testing.T) {
	srv := grpc.NewServer()
	api.RegisterApiServer(srv, namedServer{name: "local"})
	addr := serve(t, srv)
	_, port, _ := net.SplitHostPort(addr)
	for _, target := range []string{"dns:///localhost:" + port, "localhost:" + port, "dns:///" + addr, addr} {
		t.Run(target, func(t *testing.T) {
			c := testkit.NewClient(t, target, client.WithDNSRefresh(10*time.Millisecond))
			if name, err := c.SayHello(t.Context(), "x"); err != nil || name != "local" {
				t.Fatalf("SayHello = %q, %v", name, err)
			}
			if got := c.ResolvedAddrs(); !slices.Contains(got, addr) {
				t.Errorf("resolved addresses %v, want %s among them", got, addr)
			}
		})
	}
}
