package frontend

import (
	"bufio"
	"context"
	"fmt"
	"iter"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/clientlimit"
	"github.com/grpcplay/grpcplay/internal/clientlimit/clientlimittest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// manyEndless is an endlessBackend for many streams: ended gets one value
// per stream that has ended.
type manyEndless struct {
	blockingBackend
	ended chan struct{}
}

func (b *manyEndless) GetStream(ctx context.Context, n int32) iter.Seq2[*api.Item, error] {
	one := &endlessBackend{cancelled: make(chan struct{})}
	return func(yield func(*api.Item, error) bool) {
		defer func() { b.ended <- struct{}{} }()
		one.GetStream(ctx, n)(yield)
	}
}

// openLive opens a live stream and reads its first event; the caller
// closes the response.
func openLive(t *testing.T, hc *http.Client, url string) *http.Response {
	t.Helper()
	resp, err := hc.Get(url + "/live/events?length=100000")
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode == http.StatusOK {
		if _, err := readEvents(resp.Body, func(sseEvent) bool { return true }); err != nil {
			t.Fatal(err)
		}
	}
	return resp
}

// A lone client may hold every live slot; a newcomer takes the oldest
// stream of the largest holder, until both hold as many.
func TestLiveSlotsAreSharedFairly(t *testing.T) {
	fake := &manyEndless{ended: make(chan struct{}, 16)}
	ts := newFrontend(t, Config{MaxLiveStreams: 4}, fake)
	greedy, other := clientlimittest.Client(t, "127.0.0.2"), clientlimittest.Client(t, "127.0.0.3")
	for i := range 4 {
		resp := openLive(t, greedy, ts.URL)
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("stream %d of the only client: %d, want 200", i+1, resp.StatusCode)
		}
	}
	over := openLive(t, greedy, ts.URL)
	over.Body.Close()
	if over.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("a stream over every slot: %d, want 429", over.StatusCode)
	}
	for i, want := range []int{http.StatusOK, http.StatusOK, http.StatusTooManyRequests} {
		resp := openLive(t, other, ts.URL)
		defer resp.Body.Close()
		if resp.StatusCode != want {
			t.Fatalf("the newcomer's stream %d: %d, want %d", i+1, resp.StatusCode, want)
		}
		if want == http.StatusOK {
			<-fake.ended // one of the greedy client's streams, evicted
		}
	}
}

// A reader that stops reading an endless stream is dropped once its
// writes wait past the floor, and its slot goes to the next client.
func TestSlowLiveReaderIsDropped(t *testing.T) {
	fake := &manyEndless{ended: make(chan struct{}, 16)}
	floor := clientlimit.MinRate{Rate: 1 << 20, Window: 200 * time.Millisecond, Stall: time.Second}
	ts := newFrontend(t, Config{MaxLiveStreams: 1, SlowReader: floor}, fake)
	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /live/events?length=100000 HTTP/1.1\r\nHost: localhost\r\n\r\n")
	status, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil || !strings.Contains(status, "200") {
		t.Fatalf("the stalled stream: %q %v", status, err)
	}
	// Never read again: the backend's stream ends once the writes give up.
	select {
	case <-fake.ended:
	case <-time.After(30 * time.Second):
		t.Fatal("a reader that stopped reading still holds its stream after 30s")
	}
	// The slot is given back as the handler returns, just after.
	testkit.Eventually(t, 10*time.Second, func() error {
		next, err := http.Get(ts.URL + "/live/events?length=3")
		if err != nil {
			t.Fatal(err)
		}
		next.Body.Close()
		return testkit.Failf(next.StatusCode == http.StatusOK, "the next stream: %d after the stalled one ended, want 200", next.StatusCode)
	})
}

// A client cannot take more than its share by writing X-Forwarded-For;
// from a trusted proxy, the header splits the clients behind it.
func TestForwardedForCountsOnlyFromTrustedProxies(t *testing.T) {
	fake := &manyEndless{ended: make(chan struct{}, 16)}
	cfg := Config{MaxLiveStreams: 3, TrustedProxies: clientlimit.Proxies{netip.MustParsePrefix("127.0.0.5/32")}}
	ts := newFrontend(t, cfg, fake)
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
		resp := openLive(t, step.hc, ts.URL)
		defer resp.Body.Close()
		if resp.StatusCode != step.want {
			t.Fatalf("%s: %d, want %d", step.what, resp.StatusCode, step.want)
		}
	}
}
