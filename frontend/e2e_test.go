package frontend

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/internal/testkit"
	"github.com/grpcplay/grpcplay/internal/testkit/browser"
)

func TestBrowser(t *testing.T) {
	ctx := browser.New(t)
	b := backendtest.Start(t, backend.Config{})
	c := testkit.NewClient(t, b.Addr)
	ts := newFrontend(t, Config{Timeout: 3 * time.Second, MaxLiveItems: 5000}, c)

	t.Run("page", func(t *testing.T) { browserPage(t, ctx, ts.URL) })

	t.Run("form", func(t *testing.T) { browserForm(t, ctx, ts.URL) })

	t.Run("live", func(t *testing.T) { browserLive(t, ctx, ts.URL) })

	t.Run("backend down and back", func(t *testing.T) {
		addr := b.Addr
		b.Stop(5 * time.Second)
		if status := browser.Navigate(t, ctx, ts.URL+"/"); status != 503 {
			t.Fatalf("status %d, want 503", status)
		}
		if got := browser.Text(t, ctx, "error-messages"); !strings.HasPrefix(got, "The backend is unreachable right now.") {
			t.Errorf("message %q", got)
		}
		if got := browser.Text(t, ctx, "error-title"); got != "Backend unreachable" {
			t.Errorf("title %q", got)
		}

		backendtest.StartAt(t, addr, backend.Config{})
		reloadUntilOK(t, ctx, ts.URL+"/", c.Conn())
		if got := browser.Text(t, ctx, "greeting"); got != "Hello Gonzalo!" {
			t.Errorf("greeting %q", got)
		}
	})
}

func browserLive(t *testing.T, ctx context.Context, base string) {
	for _, n := range []int{0, 40, 1200} {
		url := base + "/live?length=" + itoa(n)
		if status := browser.Navigate(t, ctx, url); status != 200 {
			t.Fatalf("%s: status %d", url, status)
		}
		state, err := chromedp.Run(ctx, chromedp.Poll[string](`document.body.dataset.live`,
			chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil || state != "done" {
			t.Fatalf("%s: state %q, %v; status %q", url, state, err, browser.Text(t, ctx, "live-status"))
		}
		if got, want := browser.Text(t, ctx, "live-status"), "Done: received "+itoa(n)+" items."; got != want {
			t.Errorf("%s: status %q, want %q", url, got, want)
		}
		if got := browser.Text(t, ctx, "live-count"); got != itoa(n) {
			t.Errorf("%s: count %q", url, got)
		}
		if got, want := browser.Count(t, ctx, "#live-items tr"), min(n, 500); got != want {
			t.Errorf("%s: %d rows, want %d", url, got, want)
		}
		if n > 0 {
			if got := browser.Text(t, ctx, "live-items"); !strings.HasSuffix(got, "name "+itoa(n)) {
				t.Errorf("%s: rows end with %q", url, got[max(0, len(got)-40):])
			}
		}
	}
	if status := browser.Navigate(t, ctx, base+"/live?length=5001"); status != 400 {
		t.Errorf("over the limit: status %d", status)
	}
	if got := browser.Text(t, ctx, "error-messages"); got != "length must be at most 5000, got 5001." {
		t.Errorf("message %q", got)
	}
}

func browserForm(t *testing.T, ctx context.Context, base string) {
	if status := browser.Navigate(t, ctx, base+"/"); status != 200 {
		t.Fatalf("status %d", status)
	}
	if err := chromedp.Do(ctx,
		chromedp.SetValue(chromedp.ID("name"), "Ada"),
		chromedp.SetValue(chromedp.ID("items"), "3"),
		chromedp.SetValue(chromedp.ID("stream"), "2"),
	); err != nil {
		t.Fatal(err)
	}
	resp, err := chromedp.RunResponse(ctx, chromedp.Click(chromedp.ID("show")))
	if err != nil || resp.Status != 200 {
		t.Fatalf("submit: %v %v", resp, err)
	}
	if got := browser.Text(t, ctx, "greeting"); got != "Hello Ada!" {
		t.Errorf("greeting %q", got)
	}
	if got := browser.Count(t, ctx, "table.items tbody tr"); got != 5 {
		t.Errorf("%d item rows, want 3 + 2", got)
	}

	// The browser's own checks would stop a user at -3; submit() skips
	// them, as an old browser or a hand-typed URL would.
	if err := chromedp.Do(ctx, chromedp.SetValue(chromedp.ID("items"), "-3")); err != nil {
		t.Fatal(err)
	}
	resp, err = chromedp.RunResponse(ctx, chromedp.Submit(chromedp.ID("items")))
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if resp.Status != 400 {
		t.Errorf("status %d, want 400", resp.Status)
	}
	if got := browser.Text(t, ctx, "error-messages"); got != "items must be 0 or more, got -3." {
		t.Errorf("message %q", got)
	}
	// The form keeps what the user typed, so it can be corrected.
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("name"))); err != nil || v != "Ada" {
		t.Errorf("name field %q, %v", v, err)
	}
}

func browserPage(t *testing.T, ctx context.Context, base string) {
	if status := browser.Navigate(t, ctx, base+"/"); status != 200 {
		t.Fatalf("status %d", status)
	}
	if got := browser.Text(t, ctx, "greeting"); got != "Hello Gonzalo!" {
		t.Errorf("greeting %q", got)
	}
	if got := browser.Count(t, ctx, "table.items tbody tr"); got != 15 {
		t.Errorf("%d item rows, want 10 + 5", got)
	}
	if got := browser.Text(t, ctx, "all-count") + " / " + browser.Text(t, ctx, "stream-count"); got != "10 items / 5 items" {
		t.Errorf("counts %q", got)
	}
	// The stylesheet loaded from the binary: the card has a border.
	border, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector(".card")).borderTopStyle`))
	if err != nil || border != "solid" {
		t.Errorf("stylesheet not applied: border %q, %v", border, err)
	}
	browser.Screenshot(t, ctx, "GRPCPLAY_SCREENSHOT")
}

// reloadUntilOK reloads url, as a user would, until the page is back. Nothing
// but the page requests themselves helps the client reconnect; between two
// tries it waits for the connection's state to change, not for a time.
func reloadUntilOK(t *testing.T, ctx context.Context, url string, conn *grpc.ClientConn) {
	t.Helper()
	waitCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for {
		state := conn.GetState()
		status := browser.Navigate(t, ctx, url)
		if status == 200 {
			return
		}
		if status != 503 {
			t.Fatalf("while the backend came back: status %d", status)
		}
		if !conn.WaitForStateChange(waitCtx, state) {
			t.Fatalf("the page did not recover; connection state %v", conn.GetState())
		}
	}
}

func itoa(n int) string { return strconv.Itoa(n) }
