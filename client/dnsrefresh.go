package client

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"slices"
	"time"

	"google.golang.org/grpc/resolver"
)

// WithDNSRefresh makes the client look the target's name up again every
// interval, so that round_robin spreads calls over addresses added since
// (the pods of a scale-up) and stops using those gone, within interval plus
// the DNS server's cache time. Without it, grpc-go's dns resolver looks up
// again only when a connection is lost or closed, and at most every 30 s
// (grpc-go#1663): a new pod then waits for the server's MaxConnectionAge to
// get its share. A few seconds suits cluster DNS, whose answers live 5 s.
// Each lookup asks for the name's A and AAAA records: at 2 s, a client sends
// its DNS server about 60 queries a minute, and none once its connection has
// gone idle (after 30 min without a call, grpc-go's default).
//
// It applies to dns targets ("dns:///name:port", or "name:port", as dns is
// the default scheme). A target that is an IP address, has no port, or
// names its own DNS server ("dns://server/name:port") keeps grpc-go's
// resolver. Zero or less leaves it off.
func WithDNSRefresh(interval time.Duration) Option {
	return func(s *settings) {
		s.dnsRefresh = dnsRefresh{interval: interval, lookupHost: net.DefaultResolver.LookupHost}
	}
}

// dnsRefresh is WithDNSRefresh's setting; lookupHost is the stdlib's, or a
// test's stand-in.
type dnsRefresh struct {
	interval   time.Duration
	lookupHost func(ctx context.Context, host string) ([]string, error)
}

// dnsLookupTimeout bounds one lookup, in case the resolver's own timeouts
// (5 s per server and attempt) add up; the next lookup waits for it.
const dnsLookupTimeout = 10 * time.Second

// builder is the resolver for the dns scheme, or nil to keep grpc-go's.
// grpc-go's resolver package is marked EXPERIMENTAL; there is no stable
// way to change how a target is resolved, and resolved.go relies on it too.
func (r dnsRefresh) builder() resolver.Builder {
	fallback := resolver.Get("dns")
	if r.interval <= 0 || fallback == nil {
		return nil
	}
	return refreshingBuilder{dnsRefresh: r, fallback: fallback}
}

type refreshingBuilder struct {
	dnsRefresh
	fallback resolver.Builder
}

func (refreshingBuilder) Scheme() string { return "dns" }

func (b refreshingBuilder) Build(target resolver.Target, cc resolver.ClientConn, opts resolver.BuildOptions) (resolver.Resolver, error) {
	host, port, err := net.SplitHostPort(target.Endpoint())
	_, notIP := netip.ParseAddr(host)
	if err != nil || notIP == nil || host == "" || port == "" || target.URL.Host != "" {
		return b.fallback.Build(target, cc, opts)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &refreshingResolver{dnsRefresh: b.dnsRefresh, cc: cc, host: host, port: port, cancel: cancel, done: make(chan struct{})}
	go r.run(ctx)
	return r, nil
}

// refreshingResolver looks host up every interval and reports the answer
// when it differs from the last one reported.
type refreshingResolver struct {
	dnsRefresh
	cc         resolver.ClientConn
	host, port string
	cancel     context.CancelFunc
	done       chan struct{}
}

// ResolveNow does nothing: gRPC asks when a connection fails, and the next
// lookup is at most an interval away.
func (r *refreshingResolver) ResolveNow(resolver.ResolveNowOptions) {}

func (r *refreshingResolver) Close() {
	r.cancel()
	<-r.done
}

func (r *refreshingResolver) run(ctx context.Context) {
	defer close(r.done)
	var reported []string // nil until an answer has been reported
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-timer.C:
		}
		addrs, err := r.lookup(ctx)
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			// Balancers keep the connections they have through a resolver
			// error; the next good answer is reported whatever it is.
			r.cc.ReportError(err)
			reported = nil
		case reported == nil || !slices.Equal(addrs, reported):
			// An empty answer fails calls, as with grpc-go's resolver; the
			// error UpdateState returns then says nothing new.
			_ = r.cc.UpdateState(stateOf(addrs))
			reported = addrs
		}
		timer.Reset(r.interval)
	}
}

// lookup returns host's addresses with the port, sorted, so that answers
// in another order compare equal. A name that does not exist has no
// addresses, as for grpc-go's resolver: a headless Service without a Ready
// pod is such a name.
func (r *refreshingResolver) lookup(ctx context.Context) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, dnsLookupTimeout)
	defer cancel()
	ips, err := r.lookupHost(ctx, r.host)
	if dnsErr := (*net.DNSError)(nil); errors.As(err, &dnsErr) && dnsErr.IsNotFound {
		ips, err = nil, nil
	}
	if err != nil {
		return nil, err
	}
	addrs := make([]string, 0, len(ips))
	for _, ip := range ips {
		addrs = append(addrs, net.JoinHostPort(ip, r.port))
	}
	slices.Sort(addrs)
	return slices.Compact(addrs), nil
}

func stateOf(addrs []string) resolver.State {
	s := resolver.State{Addresses: make([]resolver.Address, len(addrs)), Endpoints: make([]resolver.Endpoint, len(addrs))}
	for i, a := range addrs {
		s.Addresses[i] = resolver.Address{Addr: a}
		s.Endpoints[i] = resolver.Endpoint{Addresses: []resolver.Address{s.Addresses[i]}}
	}
	return s
}
