// Package clientlimit caps what one client may hold at once: live streams,
// REST streams, metrics scrapes. A global cap alone lets one client take
// every slot; a cap per client leaves the rest to the others.
//
// A client is its TCP peer's address: an IPv4 address, or the /64 of an
// IPv6 one, since a single IPv6 host is usually handed a whole /64.
// X-Forwarded-For is believed only from the trusted proxies a Limiter is
// given (see Proxies): any client can write the header.
//
// net/http and golang.org/x/net/netutil bound connections for a whole
// listener, and golang.org/x/time/rate bounds a rate, not what is held at
// once; a counter per address under one mutex is all this needs.
package clientlimit

import (
	"net/http"
	"net/netip"
	"sync"
)

// Limiter counts the slots each client holds, up to PerClient each. The zero
// value is not usable; use New.
type Limiter struct {
	perClient int
	proxies   Proxies
	mu        sync.Mutex
	held      map[netip.Prefix]int
}

// New returns a Limiter that lets each client hold perClient slots,
// believing the X-Forwarded-For header of the peers in proxies.
func New(perClient int, proxies Proxies) *Limiter {
	return &Limiter{perClient: max(perClient, 1), proxies: proxies, held: make(map[netip.Prefix]int)}
}

// PerClient is the number of slots one client may hold.
func (l *Limiter) PerClient() int { return l.perClient }

// Acquire takes a slot for r's client, and reports false when that client
// holds PerClient already. Each true must be followed by one call of the
// release func it returns.
func (l *Limiter) Acquire(r *http.Request) (release func(), ok bool) {
	key := l.proxies.Client(r)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held[key] >= l.perClient {
		return nil, false
	}
	l.held[key]++
	return sync.OnceFunc(func() { l.release(key) }), true
}

func (l *Limiter) release(key netip.Prefix) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// Deleted at zero, so that the map holds only clients with slots and
	// cannot grow with the number of clients ever seen.
	if l.held[key]--; l.held[key] <= 0 {
		delete(l.held, key)
	}
}

// Held is the number of clients holding a slot now.
func (l *Limiter) Held() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.held)
}

// Client names the client at remoteAddr (a RemoteAddr, "ip:port"). An
// address that does not parse, which net/http never gives, is one client
// of its own: the zero prefix.
func Client(remoteAddr string) netip.Prefix {
	addr, ok := parseAddr(remoteAddr)
	if !ok {
		return netip.Prefix{}
	}
	return prefixOf(addr)
}

// prefixOf is addr's client: the address itself, or its /64 for IPv6.
func prefixOf(addr netip.Addr) netip.Prefix {
	bits := 32
	if addr.Is6() {
		bits = 64
	}
	p, _ := addr.Prefix(bits)
	return p
}
