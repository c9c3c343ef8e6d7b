package compare

import (
	"net"
	"net/http"
	"net/netip"
	"os"
	"strings"
)

// A page of another site cannot start a bench in a visitor's browser: a
// POST to /compare/run must pass Go's http.CrossOriginProtection, which
// refuses a request whose Sec-Fetch-Site or Origin says it came from
// another site, and must name a host this server serves. The origin check
// alone passes DNS rebinding, where the other site's name is made to
// resolve to this server: its Host and Origin then agree, on that name. A
// request with neither header is not a browser's, and passes, as curl does.

// servedHosts is what a Host header may name, besides an IP address and
// localhost or a name under it (RFC 6761: browsers resolve those to
// loopback themselves, so no rebinding can reach them). Both stand for
// this machine and nothing else.
type servedHosts map[string]bool

// newServedHosts is the machine's own name plus the configured hosts.
func newServedHosts(extra []string) servedHosts {
	hosts := servedHosts{}
	if name, err := os.Hostname(); err == nil && name != "" {
		hosts[normalHost(name)] = true
	}
	for _, h := range extra {
		hosts[normalHost(h)] = true
	}
	return hosts
}

// serves reports whether hostport (a Host header) names this server.
func (h servedHosts) serves(hostport string) bool {
	host := hostport
	if name, _, err := net.SplitHostPort(hostport); err == nil {
		host = name
	}
	host = normalHost(host)
	if bare, ok := strings.CutPrefix(host, "["); ok {
		host = strings.TrimSuffix(bare, "]") // a bracketed IPv6 address without a port
		if !strings.HasSuffix(bare, "]") {
			return false
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return true
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || h[host]
}

// normalHost lowercases a name and drops its trailing dot and port.
func normalHost(h string) string {
	if name, _, err := net.SplitHostPort(h); err == nil {
		h = name
	}
	return strings.TrimSuffix(strings.ToLower(h), ".")
}

// errForeignRequest is a run that another site's page, or a name this
// server does not serve, asked for.
var errForeignRequest = &refusal{status: http.StatusForbidden,
	message: "a bench can only be started from this site's own /compare page."}

// sameSite is the check of /compare/run.
func (p *page) sameSite(r *http.Request) *refusal {
	if !p.hosts.serves(r.Host) {
		return errForeignRequest
	}
	if err := p.crossOrigin.Check(r); err != nil {
		return errForeignRequest
	}
	return nil
}
