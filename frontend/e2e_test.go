package frontend

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"google.golang.org/grpc"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

const chromiumPath = "/usr/bin/chromium"

// newBrowser starts a headless Chromium for the test and returns a tab.
// Without Chromium the test is skipped on a laptop but fails in CI, where a
// skipped end-to-end test would hide that it never ran.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	path := chromiumPath
	if _, err := os.Stat(path); err != nil {
		if p, lookErr := exec.LookPath("chromium"); lookErr == nil {
			path = p
		} else if os.Getenv("CI") == "true" {
			t.Fatalf("chromium is missing (%v); install it with apt-get install -y chromium", err)
		} else {
			t.Skipf("chromium is missing (%v); install it with apt-get install -y chromium", err)
		}
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1100, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	ctx, cancelTimeout := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() {
		cancelTimeout()
		cancelTab()
		cancelAlloc()
	})
	return ctx
}

// navigate loads url and returns the HTTP status of the document.
func navigate(t *testing.T, ctx context.Context, url string) int64 {
	t.Helper()
	resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
	if err != nil {
		t.Fatalf("navigate to %s: %v", url, err)
	}
	return resp.Status
}

func text(t *testing.T, ctx context.Context, id string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id)))
	if err != nil {
		t.Fatalf("text of #%s: %v", id, err)
	}
	return strings.TrimSpace(s)
}

func count(t *testing.T, ctx context.Context, css string) int {
	t.Helper()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int]("document.querySelectorAll("+strconv.Quote(css)+").length"))
	if err != nil {
		t.Fatalf("count %s: %v", css, err)
	}
	return n
}

func TestBrowser(t *testing.T) {
	ctx := newBrowser(t)
	b := backendtest.Start(t, backend.Config{})
	c := testkit.NewClient(t, b.Addr)
	ts := newFrontend(t, Config{Timeout: 3 * time.Second, MaxLiveItems: 5000}, c)

	t.Run("page", func(t *testing.T) { browserPage(t, ctx, ts.URL) })

	t.Run("form", func(t *testing.T) { browserForm(t, ctx, ts.URL) })

	t.Run("live", func(t *testing.T) { browserLive(t, ctx, ts.URL) })

	t.Run("backend down and back", func(t *testing.T) {
		addr := b.Addr
		b.Stop(5 * time.Second)
		if status := navigate(t, ctx, ts.URL+"/"); status != 503 {
			t.Fatalf("status %d, want 503", status)
		}
		if got := text(t, ctx, "error-messages"); !strings.HasPrefix(got, "The backend is unreachable right now.") {
			t.Errorf("message %q", got)
		}
		if got := text(t, ctx, "error-title"); got != "Backend unreachable" {
			t.Errorf("title %q", got)
		}

		backendtest.StartAt(t, addr, backend.Config{})
		reloadUntilOK(t, ctx, ts.URL+"/", c.Conn())
		if got := text(t, ctx, "greeting"); got != "Hello Gonzalo!" {
			t.Errorf("greeting %q", got)
		}
	})
}

func browserLive(t *testing.T, ctx context.Context, base string) {
	for _, n := range []int{0, 40, 1200} {
		url := base + "/live?length=" + itoa(n)
		if status := navigate(t, ctx, url); status != 200 {
			t.Fatalf("%s: status %d", url, status)
		}
		state, err := chromedp.Run(ctx, chromedp.Poll[string](`document.body.dataset.live`,
			chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
		if err != nil || state != "done" {
			t.Fatalf("%s: state %q, %v; status %q", url, state, err, text(t, ctx, "live-status"))
		}
		if got, want := text(t, ctx, "live-status"), "Done: received "+itoa(n)+" items."; got != want {
			t.Errorf("%s: status %q, want %q", url, got, want)
		}
		if got := text(t, ctx, "live-count"); got != itoa(n) {
			t.Errorf("%s: count %q", url, got)
		}
		if got, want := count(t, ctx, "#live-items tr"), min(n, 500); got != want {
			t.Errorf("%s: %d rows, want %d", url, got, want)
		}
		if n > 0 {
			if got := text(t, ctx, "live-items"); !strings.HasSuffix(got, "name "+itoa(n)) {
				t.Errorf("%s: rows end with %q", url, got[max(0, len(got)-40):])
			}
		}
	}
	if status := navigate(t, ctx, base+"/live?length=5001"); status != 400 {
		t.Errorf("over the limit: status %d", status)
	}
	if got := text(t, ctx, "error-messages"); got != "length must be at most 5000, got 5001." {
		t.Errorf("message %q", got)
	}
}

func browserForm(t *testing.T, ctx context.Context, base string) {
	if status := navigate(t, ctx, base+"/"); status != 200 {
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
	if got := text(t, ctx, "greeting"); got != "Hello Ada!" {
		t.Errorf("greeting %q", got)
	}
	if got := count(t, ctx, "table.items tbody tr"); got != 5 {
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
	if got := text(t, ctx, "error-messages"); got != "items must be 0 or more, got -3." {
		t.Errorf("message %q", got)
	}
	// The form keeps what the user typed, so it can be corrected.
	if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("name"))); err != nil || v != "Ada" {
		t.Errorf("name field %q, %v", v, err)
	}
}

func browserPage(t *testing.T, ctx context.Context, base string) {
	if status := navigate(t, ctx, base+"/"); status != 200 {
		t.Fatalf("status %d", status)
	}
	if got := text(t, ctx, "greeting"); got != "Hello Gonzalo!" {
		t.Errorf("greeting %q", got)
	}
	if got := count(t, ctx, "table.items tbody tr"); got != 15 {
		t.Errorf("%d item rows, want 10 + 5", got)
	}
	if got := text(t, ctx, "all-count") + " / " + text(t, ctx, "stream-count"); got != "10 items / 5 items" {
		t.Errorf("counts %q", got)
	}
	// The stylesheet loaded from the binary: the card has a border.
	border, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.querySelector(".card")).borderTopStyle`))
	if err != nil || border != "solid" {
		t.Errorf("stylesheet not applied: border %q, %v", border, err)
	}
}

// screenshot saves the page as a PNG to the file named by the variable
// env, when it is set, to look at what the test saw.
func screenshot(t *testing.T, ctx context.Context, env string) {
	t.Helper()
	path := os.Getenv(env)
	if path == "" {
		return
	}
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
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
		status := navigate(t, ctx, url)
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
