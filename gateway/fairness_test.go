package gateway_test

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/gateway"
	"github.com/grpcplay/grpcplay/internal/clientlimit"
	"github.com/grpcplay/grpcplay/internal/clientlimit/clientlimittest"
)

// openStream opens a long stream and reads its first line; the caller
// closes the response.
func openStream(t *testing.T, hc *http.Client, base string) (*http.Response, string) {
	t.Helper()
	resp, err := hc.Get(base + "/v1/stream?length=10000000")
	if err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(resp.Body).ReadString('\n')
	return resp, line
}

// One client holds at most its share of the stream slots; the others
// still get theirs.
func TestStreamsAreCappedPerClient(t *testing.T) {
	r := start(t, gateway.Config{MaxStreams: 4, MaxStreamsPerClient: 2})
	greedy, other := clientlimittest.Client(t, "127.0.0.2"), clientlimittest.Client(t, "127.0.0.3")
	for i := range 2 {
		resp, _ := openStream(t, greedy, r.base)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d of the client: %d, want 200", i+1, resp.StatusCode)
		}
	}
	over, line := openStream(t, greedy, r.base)
	over.Body.Close()
	if over.StatusCode != http.StatusTooManyRequests || !strings.Contains(line, "from your address") {
		t.Fatalf("a stream over the client's cap: %d %q, want 429 saying why", over.StatusCode, line)
	}
	resp, _ := openStream(t, other, r.base)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("another client's stream: %d, want 200", resp.StatusCode)
	}
}

// A client that stops reading a stream is cut once its writes wait past
// the floor: the stream's loop ends long before its deadline.
func TestSlowStreamReaderIsCut(t *testing.T) {
	floor := clientlimit.MinRate{Rate: 1 << 20, Window: 200 * time.Millisecond, Stall: time.Second}
	r := start(t, gateway.Config{MaxStreams: 1, SlowReader: floor})
	conn, err := net.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	io.WriteString(conn, "GET /v1/stream?length=10000000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
	select {
	case err := <-r.svc.streamEnded:
		if err == nil || !strings.Contains(err.Error(), "stopped reading") && !strings.Contains(err.Error(), "slow reader") {
			t.Fatalf("the stalled stream ended with %v, want a cut for its reader", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a reader that stopped reading still holds its stream after 30s")
	}
}

// A client cannot dodge its cap by writing X-Forwarded-For; from a trusted
// proxy, the header splits the clients behind it, each with its own share.
func TestForwardedForCountsOnlyFromTrustedProxies(t *testing.T) {
	r := start(t, gateway.Config{MaxStreams: 4, MaxStreamsPerClient: 1, TrustedProxies: clientlimit.Proxies{netip.MustParsePrefix("127.0.0.5/32")}})
	direct, proxy := clientlimittest.Client(t, "127.0.0.2"), clientlimittest.Client(t, "127.0.0.5")
	for _, step := range []struct {
		what string
		hc   *http.Client
		want int
	}{
		{"a direct client's stream", clientlimittest.Forwarding(direct, "192.0.2.1"), http.StatusOK},
		{"the direct client's second, under another X-Forwarded-For", clientlimittest.Forwarding(direct, "192.0.2.2"), http.StatusTooManyRequests},
		{"a client behind the proxy", clientlimittest.Forwarding(proxy, "192.0.2.1"), http.StatusOK},
		{"another client behind the proxy", clientlimittest.Forwarding(proxy, "192.0.2.2"), http.StatusOK},
		{"the first client behind the proxy again, with a made-up address prepended", clientlimittest.Forwarding(proxy, "198.51.100.9, 192.0.2.1"), http.StatusTooManyRequests},
	} {
		resp, _ := openStream(t, step.hc, r.base)
		defer resp.Body.Close()
		if resp.StatusCode != step.want {
			t.Fatalf("%s: %d, want %d", step.what, resp.StatusCode, step.want)
		}
	}
}
