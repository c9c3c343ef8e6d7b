package client

import (
	"slices"
	"sync"

	"google.golang.org/grpc/resolver"
)

// resolvedAddrs remembers the addresses the connection's name resolver last
// reported, for pages such as the frontend's /debug. gRPC keeps them in
// channelz, which is internal to grpc-go or served only as a gRPC service,
// so the resolver is wrapped instead; it runs only when the name resolves
// again, never on the call path.
type resolvedAddrs struct {
	mu    sync.Mutex
	addrs []string
}

// builders wraps the resolvers grpc-go registers for the schemes a target
// may use (a target without a scheme resolves through dns), with dns
// instead of grpc-go's when it is not nil.
func (r *resolvedAddrs) builders(dns resolver.Builder) []resolver.Builder {
	var bs []resolver.Builder
	for _, scheme := range []string{"dns", "passthrough", "unix", "unix-abstract"} {
		b := resolver.Get(scheme)
		if scheme == "dns" && dns != nil {
			b = dns
		}
		if b != nil {
			bs = append(bs, watchingBuilder{Builder: b, addrs: r})
		}
	}
	return bs
}

func (r *resolvedAddrs) set(s resolver.State) {
	var addrs []string
	for _, e := range s.Endpoints {
		for _, a := range e.Addresses {
			addrs = append(addrs, a.Addr)
		}
	}
	if len(s.Endpoints) == 0 {
		for _, a := range s.Addresses {
			addrs = append(addrs, a.Addr)
		}
	}
	slices.Sort(addrs)
	addrs = slices.Compact(addrs)
	r.mu.Lock()
	r.addrs = addrs
	r.mu.Unlock()
}

func (r *resolvedAddrs) get() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.addrs)
}

type watchingBuilder struct {
	resolver.Builder
	addrs *resolvedAddrs
}

func (b watchingBuilder) Build(target resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	return b.Builder.Build(target, watchingConn{ClientConn: cc, addrs: b.addrs}, opts)
}

type watchingConn struct {
	resolver.ClientConn
	addrs *resolvedAddrs
}

func (c watchingConn) UpdateState(s resolver.State) error {
	c.addrs.set(s)
	return c.ClientConn.UpdateState(s)
}

// ResolvedAddrs returns the backend addresses the target last resolved to,
// sorted; nil before the first resolution.
func (c *Client) ResolvedAddrs() []string {
	return c.resolved.get()
}
