package compare

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/frontend"
	"github.com/grpcplay/grpcplay/internal/testkit/browser"
)

// screenWidths are a phone's (an iPhone 12 to 15 in portrait) and a laptop's.
var screenWidths = []int64{390, 1280}

// A screen is one page as the README shows it.
type screen struct {
	name   string
	path   string
	status int64
	// ready, when set, is a script that returns true once the page is
	// done changing (the live view ends its stream).
	ready string
}

var screens = []screen{
	{name: "page", path: "/", status: 200},
	{name: "live", path: "/live?length=20", status: 200, ready: `document.body.dataset.live === "done"`},
	{name: "compare", path: "/compare", status: 200},
	{name: "debug", path: "/debug", status: 200},
	{name: "rejected", path: "/?items=abc", status: 400},
	{name: "not-found", path: "/no-such-page", status: 404},
	{name: "unreachable", path: "/", status: 503},
}

// screensDir is where the committed screenshots are, for the README.
const screensDir = "../../docs/screens"

// TestScreens loads every page of a frontend as grpcplay serves it (its
// own pages and this package's /compare) at a phone's width and a
// laptop's, and checks that none scrolls sideways, that the header stays one line, and
// that every page offers the same navigation.
//
//	GRPCPLAY_SCREENSHOTS=$PWD/docs/screens go test -count=1 -run TestScreens ./bench/compare/
//
// writes the screenshots the README shows.
func TestScreens(t *testing.T) {
	ctx := browser.New(t)
	fake := newFakeComparer()
	close(fake.release)
	b := backendtest.Start(t, backend.Config{})
	c, err := client.New(b.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ts := httptest.NewServer(frontend.New(frontend.Config{
		Timeout: 3 * time.Second, DebugPage: true,
		Pages: []frontend.Page{Page(Config{Comparer: fake})},
	}, c).Handler())
	t.Cleanup(ts.Close)
	base := ts.URL
	// A finished run, so that /compare shows its chart and its wide table.
	postRun(t, base)
	waitIdle(t, base)

	for _, sc := range screens {
		if sc.status == 503 {
			b.Stop(5 * time.Second)
		}
		for _, width := range screenWidths {
			name := sc.name + "-" + strconv.FormatInt(width, 10)
			t.Run(name, func(t *testing.T) {
				checkScreen(t, ctx, base, sc, width)
				saveScreenshot(t, ctx, name)
			})
		}
	}
}

func checkScreen(t *testing.T, ctx context.Context, base string, sc screen, width int64) {
	opts := []chromedp.EmulateViewportOption{}
	if width < 640 {
		opts = append(opts, chromedp.EmulateMobile)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(width, 844, opts...)); err != nil {
		t.Fatal(err)
	}
	if status := browser.Navigate(t, ctx, base+sc.path); status != sc.status {
		t.Fatalf("GET %s: status %d, want %d", sc.path, status, sc.status)
	}
	if sc.ready != "" {
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](sc.ready,
			chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second))); err != nil {
			t.Fatalf("%s: never ready (%s): %v", sc.path, sc.ready, err)
		}
	}
	// A phone's browser widens its layout viewport to fit what overflows,
	// so innerWidth is compared with the screen's width too.
	overflow, err := chromedp.Run(ctx, chromedp.Evaluate[string](`((width) => {
		const doc = document.scrollingElement;
		if (doc.scrollWidth > innerWidth || innerWidth > width) {
			const wide = [...document.querySelectorAll("body *")].filter(e => e.getBoundingClientRect().right > width + 0.5);
			return "scrollWidth " + doc.scrollWidth + ", innerWidth " + innerWidth + "; beyond the right edge: " +
				wide.slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + e.className : "")).join(", ");
		}
		return "";
	})(`+strconv.FormatInt(width, 10)+`)`))
	if err != nil {
		t.Fatal(err)
	}
	if overflow != "" {
		t.Errorf("%s at %d px scrolls sideways: %s", sc.path, width, overflow)
	}
	checkHeader(t, ctx, sc, width)
	if sc.path == "/compare" && width >= 1280 {
		// On a desktop the results table fits its card, without scrolling.
		fits, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
			const box = document.querySelector("#compare-results .scroll");
			return box.scrollWidth <= box.clientWidth ? "" : "table " + box.scrollWidth + " px wide in a card of " + box.clientWidth;
		})()`))
		if err != nil {
			t.Fatal(err)
		}
		if fits != "" {
			t.Errorf("/compare at %d px: %s", width, fits)
		}
	}
	if sc.name == "rejected" {
		// The field shows the value as the user typed it, next to the message.
		if v, err := chromedp.Run(ctx, chromedp.Value(chromedp.ID("items"))); err != nil || v != "abc" {
			t.Errorf("items field %q, %v; want the rejected value abc", v, err)
		}
		if got := browser.Text(t, ctx, "error-messages"); !strings.Contains(got, "items") {
			t.Errorf("message %q does not name the field", got)
		}
	}
}

// checkHeader checks that the header holds its brand and its links (or the
// menu) on one line inside it, and that the links are the same on every page.
func checkHeader(t *testing.T, ctx context.Context, sc screen, width int64) {
	problem, err := chromedp.Run(ctx, chromedp.Evaluate[string](`(() => {
		const header = document.querySelector("header.site").getBoundingClientRect();
		const shown = [...document.querySelectorAll("header.site .brand, header.site nav a, header.site summary")].filter(e => e.checkVisibility());
		const problems = [];
		const top = shown.length && shown[0].getBoundingClientRect().top;
		for (const e of shown) {
			const r = e.getBoundingClientRect();
			const what = (e.textContent || e.tagName).trim();
			if (r.top < header.top || r.bottom > header.bottom || r.left < 0 || r.right > innerWidth) {
				problems.push(what + " is outside the header");
			}
			if (Math.abs((r.top + r.bottom) / 2 - (header.top + header.bottom) / 2) > r.height / 2) {
				problems.push(what + " is not on the header's line");
			}
		}
		return problems.join("; ");
	})()`))
	if err != nil {
		t.Fatal(err)
	}
	if problem != "" {
		t.Errorf("%s at %d px: %s", sc.path, width, problem)
	}

	links, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelector("header.site nav").querySelectorAll("a")].map(a => a.getAttribute("href"))`))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"/", "/live", "/compare", "/debug"}; !slices.Equal(links, want) {
		t.Errorf("%s: links %v, want %v", sc.path, links, want)
	}
	menu, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](`[...document.querySelectorAll("header.site .menu a")].map(a => a.getAttribute("href"))`))
	if err != nil || !slices.Equal(menu, links) {
		t.Errorf("%s: menu links %v (%v), want the header's %v", sc.path, menu, err, links)
	}
	if width < 640 {
		checkMenu(t, ctx, sc)
	}
}

// visible reports whether the element css selects is shown.
func visible(t *testing.T, ctx context.Context, css string) bool {
	t.Helper()
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`(e => !!e && e.checkVisibility())(document.querySelector(`+strconv.Quote(css)+`))`))
	if err != nil {
		t.Fatal(err)
	}
	return shown
}

// checkMenu opens the phone's menu and checks that every link shows, on
// the screen, then closes it again for the screenshot.
func checkMenu(t *testing.T, ctx context.Context, sc screen) {
	if !visible(t, ctx, "header.site .menu summary") {
		t.Errorf("%s: no menu on a phone's screen", sc.path)
		return
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("header.site .menu summary"))); err != nil {
		t.Fatalf("%s: open the menu: %v", sc.path, err)
	}
	shown, err := chromedp.Run(ctx, chromedp.Evaluate[int](`[...document.querySelectorAll("header.site .menu a")].filter(a => {
		const r = a.getBoundingClientRect();
		return a.checkVisibility() && r.left >= 0 && r.right <= innerWidth;
	}).length`))
	if err != nil || shown != 4 {
		t.Errorf("%s: the open menu shows %d links on screen (%v), want 4", sc.path, shown, err)
	}
	if sc.name == "page" {
		saveScreenshot(t, ctx, menuScreenshot)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("header.site .menu summary"))); err != nil {
		t.Fatalf("%s: close the menu: %v", sc.path, err)
	}
}

// menuScreenshot is the page on a phone with its menu open.
const menuScreenshot = "page-menu-390"

// saveScreenshot takes a screenshot of the whole page, and writes it to
// $GRPCPLAY_SCREENSHOTS/name.png when that is set.
func saveScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("GRPCPLAY_SCREENSHOTS"); dir != "" {
		if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// The README shows the screenshots: each page at each width is there.
func TestScreenshotsCommitted(t *testing.T) {
	names := []string{menuScreenshot}
	for _, sc := range screens {
		for _, width := range screenWidths {
			names = append(names, sc.name+"-"+strconv.FormatInt(width, 10))
		}
	}
	for _, name := range names {
		if _, err := os.Stat(filepath.Join(screensDir, name+".png")); err != nil {
			t.Errorf("%v: make it with GRPCPLAY_SCREENSHOTS=$PWD/docs/screens go test -count=1 -run TestScreens ./bench/compare/", err)
		}
	}
}
