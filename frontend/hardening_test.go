package frontend

import (
	"context"
	"iter"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// Whatever a user types comes back as text, never as markup that runs.
func TestUserInputIsEscaped(t *testing.T) {
	ts, _ := newStack(t, Config{})
	const attack = `<script>alert(1)</script>`
	const escaped = `&lt;script&gt;alert(1)&lt;/script&gt;`
	for _, tt := range []struct {
		path string
		code int
	}{
		{"/?name=" + url.QueryEscape(attack), http.StatusOK},
		{"/?items=" + url.QueryEscape(attack), http.StatusBadRequest},
		{"/?stream=" + url.QueryEscape(attack), http.StatusBadRequest},
		{"/live?length=" + url.QueryEscape(attack), http.StatusBadRequest},
		{"/no-such-page/" + url.PathEscape(attack), http.StatusNotFound},
	} {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := testkit.Get(t, ts.URL+tt.path)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d", resp.StatusCode, tt.code)
			}
			if strings.Contains(body, "<script>alert") {
				t.Fatalf("the input came back as markup:\n%s", body)
			}
			if tt.code != http.StatusNotFound && !strings.Contains(body, escaped) {
				t.Errorf("the input is not shown as text:\n%s", body)
			}
		})
	}
	// The events endpoint echoes a bad length as plain text, which nosniff
	// keeps a browser from reading as HTML.
	resp, _ := testkit.Get(t, ts.URL+"/live/events?length="+url.QueryEscape(attack))
	if resp.StatusCode != http.StatusBadRequest || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/plain") ||
		resp.Header.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("events: status %d, headers %v", resp.StatusCode, resp.Header)
	}
}

func TestSecurityHeadersOnEveryResponse(t *testing.T) {
	ts, _ := newStack(t, Config{})
	want := map[string]string{
		"Content-Security-Policy": "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'",
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "no-referrer",
	}
	for _, path := range []string{"/", "/?items=x", "/live", "/live/events?length=1", "/live/events?length=x",
		"/healthz", "/readyz", "/static/style.css", "/nope"} {
		resp, _ := testkit.Get(t, ts.URL+path)
		for name, value := range want {
			if got := resp.Header.Get(name); got != value {
				t.Errorf("%s: %s = %q, want %q", path, name, got, value)
			}
		}
	}
}

// pacedBackend streams n items, one every gap: a live view that lasts
// longer than the server's WriteTimeout.
type pacedBackend struct {
	blockingBackend
	n   int32
	gap time.Duration
}

func (b *pacedBackend) GetStream(ctx context.Context, _ int32) iter.Seq2[*api.Item, error] {
	return func(yield func(*api.Item, error) bool) {
		tick := time.NewTicker(b.gap)
		defer tick.Stop()
		for i := int32(1); i <= b.n; i++ {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			if !yield(backend.NewItem(i), nil) {
				return
			}
		}
	}
}

// The WriteTimeout that bounds a page must not cut a live stream that runs
// longer, as long as its events keep coming.
func TestWriteTimeoutSparesLiveStream(t *testing.T) {
	const writeTimeout = 200 * time.Millisecond
	fake := &pacedBackend{n: 15, gap: writeTimeout / 4}
	srv := New(Config{Timeout: 4 * writeTimeout}, fake)
	srv.http.WriteTimeout = writeTimeout
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	defer func() {
		if err := srv.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	}()
	base := "http://" + lis.Addr().String()

	start := time.Now()
	resp, err := http.Get(base + "/live/events?length=15")
	if err != nil {
		t.Fatal(err)
	}
	events, err := readEvents(resp.Body, nil)
	resp.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); len(events) != 16 || events[15] != (sseEvent{"done", "15"}) {
		t.Fatalf("after %v: %d events, last %+v; want 15 items and done", took, len(events), events[len(events)-1])
	}
	if took := time.Since(start); took <= writeTimeout {
		t.Fatalf("the stream took %v, not longer than the WriteTimeout; the test proves nothing", took)
	}

	// The control: the same server does cut a page that takes longer.
	resp, err = http.Get(base + "/")
	if err == nil {
		resp.Body.Close()
		t.Fatalf("a page slower than the WriteTimeout got status %d", resp.StatusCode)
	}
}
