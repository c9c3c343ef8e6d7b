package clientlimit_test

import (
	"net/http/httptest"
	"net/netip"
	"testing"

	"github.com/grpcplay/grpcplay/internal/clientlimit"
)

func TestProxiesParse(t *testing.T) {
	var p clientlimit.Proxies
	if err := p.Set(" 10.1.2.3/8, 192.0.2.7 ,2001:db8::/32,::ffff:172.16.0.0/108,"); err != nil {
		t.Fatal(err)
	}
	if got, want := p.String(), "10.0.0.0/8,192.0.2.7/32,2001:db8::/32,172.16.0.0/12"; got != want {
		t.Fatalf("parsed %q, want %q", got, want)
	}
	if err := p.Set(""); err != nil || len(p) != 0 {
		t.Fatalf("an empty list gave %v, %v; want no proxies", p, err)
	}
	if err := p.Set("10.0.0.0/8,proxy.example"); err == nil {
		t.Fatal("a host name was taken for a proxy")
	}
}

func TestClientBehindProxies(t *testing.T) {
	var trusted clientlimit.Proxies
	if err := trusted.Set("127.0.0.5,10.0.0.0/8,fd00::/8"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, peer string
		xff        []string
		want       string
	}{
		{"no header", "127.0.0.5:1", nil, "127.0.0.5/32"},
		{"untrusted peer's header is ignored", "127.0.0.2:1", []string{"192.0.2.1"}, "127.0.0.2/32"},
		{"trusted peer names its client", "127.0.0.5:1", []string{"192.0.2.1"}, "192.0.2.1/32"},
		{"rightmost untrusted entry wins over what the client wrote", "127.0.0.5:1", []string{"198.51.100.9, 192.0.2.1"}, "192.0.2.1/32"},
		{"trusted hops are skipped", "127.0.0.5:1", []string{"192.0.2.1, 10.0.0.1", "10.2.0.1"}, "192.0.2.1/32"},
		{"only proxies: the last of them", "127.0.0.5:1", []string{"10.0.0.1"}, "10.0.0.1/32"},
		{"not an address: the last trusted hop", "127.0.0.5:1", []string{"unknown, 10.0.0.1"}, "10.0.0.1/32"},
		{"ports are dropped", "127.0.0.5:1", []string{"192.0.2.1:4711"}, "192.0.2.1/32"},
		{"IPv6 clients by /64", "[fd00::1]:1", []string{"[2001:db8:1:2:3::4]:4711"}, "2001:db8:1:2::/64"},
		{"IPv4-mapped peer", "[::ffff:127.0.0.5]:1", []string{"192.0.2.1"}, "192.0.2.1/32"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := trusted.Client(r); got != netip.MustParsePrefix(tt.want) {
				t.Fatalf("client %v, want %v", got, tt.want)
			}
		})
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "127.0.0.5:1"
	r.Header.Set("X-Forwarded-For", "192.0.2.1")
	if got := clientlimit.Proxies(nil).Client(r); got != netip.MustParsePrefix("127.0.0.5/32") {
		t.Fatalf("with no trusted proxies the header named client %v", got)
	}
}
