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

// A lone client may hold every stream slot; a newcomer takes the oldest
// stream of the largest holder, until both hold as many.
func TestStreamSlotsAreSharedFairly(t *testing.T) {
	r := start(t, gateway.Config{MaxStreams: 4})
	greedy, other := clientlimittest.Client(t, "127.0.0.2"), clientlimittest.Client(t, "127.0.0.3")
	for i := range 4 {
		resp, _ := openStream(t, greedy, r.base)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d of the only client: %d, want 200", i+1, resp.StatusCode)
		}
	}
	over, line := openStream(t, greedy, r.base)
	over.Body.Close()
	if over.StatusCode != http.StatusTooManyRequests || !strings.Contains(line, "share of the 4 stream slots") {
		t.Fatalf("a stream over every slot: %d %q, want 429 saying why", over.StatusCode, line)
	}
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		resp, _ := openStream(t, other, r.base)
		defer resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("the newcomer's stream %d: %d, want %d", i+1, resp.StatusCode, want)
		}
		if want == http.StatusOK {
			<-r.svc.streamEnded // one of the greedy client's streams, evicted
		}
	}
}

// An evicted stream whose client reads nothing ends at once: the eviction
// cuts its blocked write, long before the slow-reader floor would.
func TestEvictionCutsAStalledStream(t *testing.T) {
	floor := clientlimit.MinRate{Rate: 1, Window: time.Hour, Stall: time.Hour}
	r := start(t, gateway.Config{MaxStreams: 2, SlowReader: floor})
	stalled := clientlimittest.Dialer("127.0.0.2")
	for range 2 {
		conn, err := stalled.Dial("tcp", strings.TrimPrefix(r.base, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		io.WriteString(conn, "GET /v1/stream?length=10000000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
		// Its first line arrives, then its reader stops reading.
		if line, err := bufio.NewReader(conn).ReadString('\n'); err != nil || !strings.Contains(line, "200") {
			t.Fatalf("the stalled stream: %q %v", line, err)
		}
	}
	resp, _ := openStream(t, clientlimittest.Client(t, "127.0.0.3"), r.base)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the newcomer's stream: %d, want 200", resp.StatusCode)
	}
	select {
	case err := <-r.svc.streamEnded:
		if err == nil {
			t.Fatal("the evicted stream ended without an error")
		}
	case <-time.After(30 * time.Second):
		t.Fatal("an evicted stream blocked on its reader still runs after 30s")
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

// A client cannot take more than its share by writing X-Forwarded-For;
// from a trusted proxy, the header splits the clients behind it.
func TestForwardedForCountsOnlyFromTrustedProxies(t *testing.T) {
	r := start(t, gateway.Config{MaxStreams: 3, TrustedProxies: clientlimit.Proxies{netip.MustParsePrefix("127.0.0.5/32")}})
	direct, proxy := clientlimittest.Client(t, "127.0.0.2"), clientlimittest.Client(t, "127.0.0.5")
	for _, step := range []struct {
		what string
		hc   *http.Client
		want int
	}{
		{"a direct client's stream", clientlimittest.Forwarding(direct, "192.0.2.1"), http.StatusOK},
		{"its second, under another X-Forwarded-For", clientlimittest.Forwarding(direct, "192.0.2.2"), http.StatusOK},
		{"its third, under a third", clientlimittest.Forwarding(direct, "192.0.2.3"), http.StatusOK},
		{"its fourth: the header made it no new client", clientlimittest.Forwarding(direct, "192.0.2.4"), http.StatusTooManyRequests},
		{"a client behind the proxy, taking one of the direct client's", clientlimittest.Forwarding(proxy, "192.0.2.1"), http.StatusOK},
		{"another client behind the proxy, a client of its own", clientlimittest.Forwarding(proxy, "192.0.2.2"), http.StatusOK},
	} {
		resp, _ := openStream(t, step.hc, r.base)
		defer resp.Body.Close()
		if resp.StatusCode != step.want {
			t.Fatalf("%s: %d, want %d", step.what, resp.StatusCode, step.want)
		}
	}
}
