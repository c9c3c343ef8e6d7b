// Package clientlimit shares what clients hold at once (live streams, REST
// streams, metrics scrapes) fairly among them: a global cap alone lets one
// client take every slot, and a fixed slice per client falls to a client
// with many addresses. See Shares.
//
// A client is its TCP peer's address: an IPv4 address, or the /64 of an
// IPv6 one, since a single IPv6 host is usually handed a whole /64.
// X-Forwarded-For is believed only from the trusted proxies a Limiter is
// given (see Proxies): any client can write the header.
//
// net/http and golang.org/x/net/netutil bound connections for a whole
// listener, and golang.org/x/time/rate bounds a rate, not what is held at
// once; a list of slots per address under one mutex is all this needs.
package clientlimit

import "net/netip"

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
