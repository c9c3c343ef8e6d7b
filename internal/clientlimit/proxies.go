package clientlimit

import (
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the peers whose X-Forwarded-For header is believed: an
// ingress, a load balancer, docker-proxy. Behind one, every client has the
// proxy's address, and per-client caps would make them all one client.
// Empty, the default, believes no header: any client can write one.
type Proxies []netip.Prefix

// Set parses a comma-separated list of CIDRs or single addresses, for a
// flag; it replaces the list. "" empties it.
func (p *Proxies) Set(s string) error {
	var list Proxies
	for f := range strings.SplitSeq(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(f)
		if err != nil {
			addr, addrErr := netip.ParseAddr(f)
			if addrErr != nil {
				return fmt.Errorf("%q is neither a CIDR nor an IP address", f)
			}
			prefix = netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen())
		}
		if prefix.Addr().Is4In6() {
			prefix = netip.PrefixFrom(prefix.Addr().Unmap(), max(prefix.Bits()-96, 0))
		}
		list = append(list, prefix.Masked())
	}
	*p = list
	return nil
}

func (p *Proxies) String() string {
	if p == nil {
		return ""
	}
	s := make([]string, len(*p))
	for i, prefix := range *p {
		s[i] = prefix.String()
	}
	return strings.Join(s, ",")
}

func (p Proxies) trusts(addr netip.Addr) bool {
	for _, prefix := range p {
		if prefix.Contains(addr) {
			return true
		}
	}
	return false
}

// Client names r's client. From a trusted peer, it is the rightmost
// X-Forwarded-For address that is not itself a trusted proxy: the entries
// to its left were written by the client and prove nothing. Otherwise, and
// when the header names only proxies or something that is not an address,
// it is the last trusted hop, so that such requests share one client's
// caps rather than escape them.
func (p Proxies) Client(r *http.Request) netip.Prefix {
	hop, ok := parseAddr(r.RemoteAddr)
	if !ok || !p.trusts(hop) {
		return Client(r.RemoteAddr)
	}
	values := r.Header.Values("X-Forwarded-For")
	for i := len(values) - 1; i >= 0; i-- {
		rest := values[i]
		for rest != "" {
			var entry string
			if comma := strings.LastIndexByte(rest, ','); comma >= 0 {
				rest, entry = rest[:comma], rest[comma+1:]
			} else {
				rest, entry = "", rest
			}
			entry = strings.TrimSpace(entry)
			if entry == "" {
				continue
			}
			addr, ok := parseAddr(entry)
			if !ok {
				return prefixOf(hop)
			}
			if !p.trusts(addr) {
				return prefixOf(addr)
			}
			hop = addr
		}
	}
	return prefixOf(hop)
}

// parseAddr reads an address, with or without a port as some proxies
// write it ("192.0.2.1:4711", "[2001:db8::1]:4711").
func parseAddr(s string) (netip.Addr, bool) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap().WithZone(""), true
	}
	addr, err := netip.ParseAddr(strings.Trim(s, "[]"))
	if err != nil {
		return netip.Addr{}, false
	}
	return addr.Unmap().WithZone(""), true
}
