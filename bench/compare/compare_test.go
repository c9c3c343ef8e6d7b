package compare

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"html/template"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/bench"
	"github.com/grpcplay/grpcplay/frontend"
	"github.com/grpcplay/grpcplay/internal/testkit"
	"github.com/grpcplay/grpcplay/internal/testkit/browser"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// newFrontend serves a frontend with the page of cfg on a loopback
// httptest server.
func newFrontend(t *testing.T, cfg Config) *httptest.Server {
	t.Helper()
	ts := httptest.NewServer(frontend.New(frontend.Config{Pages: []frontend.Page{Page(cfg)}}, nil).Handler())
	t.Cleanup(ts.Close)
	return ts
}

// fakeComparer reports progress over a few cases and returns a report drawn
// by the real chart code. Each run waits for release, so that a test sees it
// running.
type fakeComparer struct {
	release chan struct{}
	mu      sync.Mutex
	runs    int
}

func newFakeComparer() *fakeComparer { return &fakeComparer{release: make(chan struct{})} }

// sampleReport is a made-up report with one case per transport and length,
// each measured three times, as the page's runs are.
func sampleReport() *bench.Report {
	r := &bench.Report{Lengths: []int32{10, 1000}, Concurrency: []int{8}, GOOS: "linux", GOARCH: "amd64", CPUs: 2, GoVersion: "go", Duration: 0.3, Repeat: 3}
	for _, n := range r.Lengths {
		for i, t := range bench.Transports {
			calls := 1000.0 / float64(i+1) / float64(n)
			r.Cases = append(r.Cases, bench.Result{
				Case: bench.Case{Transport: t, Method: bench.MethodItems, Length: n, Concurrency: 8},
				Name: t + "/items len=" + strconv.Itoa(int(n)) + " c=8", Calls: 10, CallsPerSec: calls, ItemsPerSec: calls * float64(n),
				Latency: bench.Latency{P50: 12.345, P99: 123.456}, CPUPerCall: 1234.5,
				Runs: make([]bench.Repetition, 3), Spread: 0.123,
			})
		}
	}
	return r
}

func (f *fakeComparer) Compare(ctx context.Context, progress func(Progress)) (*Comparison, error) {
	f.mu.Lock()
	f.runs++
	f.mu.Unlock()
	r := sampleReport()
	progress(Progress{Done: 0, Total: len(r.Cases), Case: r.Cases[0].Name})
	select {
	case <-f.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	progress(Progress{Done: len(r.Cases), Total: len(r.Cases)})
	return &Comparison{Header: bench.TableHeader, Rows: r.Rows(), Chart: template.HTML(r.SVG()), Command: "grpcplay bench", Finished: time.Now()}, nil
}

func postRun(t *testing.T, url string, header ...string) (*http.Response, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/compare/run", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept", "application/json")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	// net/http sends Request.Host, not a Host header.
	req.Host = cmp.Or(req.Header.Get("Host"), req.Host)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("POST /compare/run: %d, body not JSON: %v", resp.StatusCode, err)
	}
	return resp, body
}

func getStatus(t *testing.T, url string) runStatus {
	t.Helper()
	resp, body := testkit.Get(t, url+"/compare/status")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status: %d", resp.StatusCode)
	}
	var st runStatus
	if err := json.Unmarshal([]byte(body), &st); err != nil {
		t.Fatal(err)
	}
	return st
}

// waitIdle polls the status until the run is over.
func waitIdle(t *testing.T, url string) runStatus {
	t.Helper()
	var st runStatus
	testkit.Eventually(t, 20*time.Second, func() error {
		st = getStatus(t, url)
		return testkit.Failf(!st.Running, "the run did not end")
	})
	return st
}

// serveReal serves a frontend with the page of cfg with its own
// http.Server on loopback, for the tests of Shutdown.
func serveReal(t *testing.T, cfg Config) (string, *frontend.Server) {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := frontend.New(frontend.Config{Pages: []frontend.Page{Page(cfg)}}, nil)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		_ = srv.Shutdown(context.Background())
		if err := <-served; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return "http://" + lis.Addr().String(), srv
}

func TestCompareWithoutComparerSaysSo(t *testing.T) {
	ts := newFrontend(t, Config{})
	resp, body := testkit.Get(t, ts.URL+"/compare")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `id="compare-unavailable"`) || strings.Contains(body, "compare-form") {
		t.Errorf("GET /compare: %d\n%s", resp.StatusCode, body)
	}
	resp, msg := postRun(t, ts.URL)
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(msg["error"].(string), "not available") {
		t.Errorf("POST /compare/run: %d %v", resp.StatusCode, msg)
	}
	if st := getStatus(t, ts.URL); st.Available || st.Running {
		t.Errorf("status %+v", st)
	}
}

func TestCompareRunsOneAtATimeAndAtMostSoOften(t *testing.T) {
	fake := newFakeComparer()
	ts := newFrontend(t, Config{Comparer: fake, Interval: time.Hour})

	resp, body := postRun(t, ts.URL)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first run: %d %v", resp.StatusCode, body)
	}
	if st := getStatus(t, ts.URL); !st.Running {
		t.Errorf("status after the start: %+v", st)
	}
	resp, body = postRun(t, ts.URL)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body["error"].(string), "already running") || resp.Header.Get("Retry-After") == "" {
		t.Errorf("second run while the first runs: %d %v, Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	close(fake.release)
	if st := waitIdle(t, ts.URL); st.Error != "" || st.Finished == "" || st.Done != st.Total || st.Total != len(sampleReport().Cases) {
		t.Errorf("status after the run: %+v", st)
	}
	resp, body = postRun(t, ts.URL)
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body["error"].(string), "at most once every 1h0m0s") || resp.Header.Get("Retry-After") != "3600" {
		t.Errorf("run within the interval: %d %v, Retry-After %q", resp.StatusCode, body, resp.Header.Get("Retry-After"))
	}
	// A person without the script gets the page's 429, with the message.
	form, err := http.Post(ts.URL+"/compare/run", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	form.Body.Close()
	if form.StatusCode != http.StatusTooManyRequests {
		t.Errorf("form POST: %d", form.StatusCode)
	}
	// Another site cannot make a visitor's browser start one.
	for _, h := range [][]string{
		{"Origin", "http://evil.example"},
		{"Sec-Fetch-Site", "cross-site"},
		// DNS rebinding: another site's name resolved to this server.
		{"Host", "evil.example:5000", "Origin", "http://evil.example:5000"},
		{"Host", "evil.example:5000", "Sec-Fetch-Site", "same-origin"},
	} {
		resp, body = postRun(t, ts.URL, h...)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(fmt.Sprint(body["error"]), "this site's own /compare page") {
			t.Errorf("POST with %q: %d %v; want 403", h, resp.StatusCode, body)
		}
	}
	if fake.runs != 1 {
		t.Errorf("%d runs, want 1", fake.runs)
	}

	page, html := testkit.Get(t, ts.URL+"/compare")
	if page.StatusCode != http.StatusOK || strings.Count(html, `class="bar"`) != len(sampleReport().Cases) || !strings.Contains(html, "rest-close/items") {
		t.Errorf("page after the run: %d\n%s", page.StatusCode, html)
	}
}

// linkComparer is fakeComparer offering links, or saying why it cannot.
type linkComparer struct {
	*fakeComparer
	links []string
	why   string
	mu    sync.Mutex
	got   []string // the link of each run
}

func (l *linkComparer) Links() ([]string, string) { return l.links, l.why }

func (l *linkComparer) CompareLink(ctx context.Context, link string, progress func(Progress)) (*Comparison, error) {
	l.mu.Lock()
	l.got = append(l.got, link)
	l.mu.Unlock()
	return l.Compare(ctx, progress)
}

func postLink(t *testing.T, url, link string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+"/compare/run", strings.NewReader("link="+link))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func TestComparePicksALinkTheMachineOffers(t *testing.T) {
	lc := &linkComparer{fakeComparer: newFakeComparer(), links: []string{"lan", "wan"}}
	close(lc.release)
	ts := newFrontend(t, Config{Comparer: lc, Interval: time.Nanosecond})
	_, html := testkit.Get(t, ts.URL+"/compare")
	if !strings.Contains(html, `id="compare-link"`) || !strings.Contains(html, `<option value="wan">wan</option>`) {
		t.Errorf("the page offers no link:\n%s", html)
	}
	if resp := postLink(t, ts.URL, "mars"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("unknown link: %d", resp.StatusCode)
	}
	if resp := postLink(t, ts.URL, "wan"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("wan: %d", resp.StatusCode)
	}
	waitIdle(t, ts.URL)
	if resp := postLink(t, ts.URL, ""); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("loopback: %d", resp.StatusCode)
	}
	waitIdle(t, ts.URL)
	lc.mu.Lock()
	defer lc.mu.Unlock()
	if len(lc.got) != 1 || lc.got[0] != "wan" || lc.runs != 2 {
		t.Errorf("runs %d, links asked %q; want wan, then one on loopback", lc.runs, lc.got)
	}
}

func TestCompareSaysWhenItCannotEmulateLinks(t *testing.T) {
	lc := &linkComparer{fakeComparer: newFakeComparer(), why: "Only loopback here: links need root."}
	ts := newFrontend(t, Config{Comparer: lc})
	_, html := testkit.Get(t, ts.URL+"/compare")
	if strings.Contains(html, `id="compare-link"`) || !strings.Contains(html, `id="compare-links-note"`) || !strings.Contains(html, "links need root") {
		t.Errorf("the page does not say why there are no links:\n%s", html)
	}
	if resp := postLink(t, ts.URL, "lan"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a link where none is offered: %d", resp.StatusCode)
	}
}

func TestShutdownEndsACompareRun(t *testing.T) {
	fake := newFakeComparer()
	ts, srv := serveReal(t, Config{Comparer: fake})
	if resp, body := postRun(t, ts); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("run: %d %v", resp.StatusCode, body)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	// Shutdown returned after the run, which the fake never released: the
	// run was cancelled and goleak finds nothing left.
	after := httptest.NewServer(srv.Handler())
	defer after.Close()
	if st := getStatus(t, after.URL); st.Running || !strings.Contains(st.Error, "context canceled") {
		t.Errorf("after shutdown: %+v", st)
	}
}

// checkChart checks the chart and the table Chromium shows after a run.
func checkChart(t *testing.T, ctx context.Context, cases int) {
	width, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("#compare-chart svg").getBoundingClientRect().width`))
	if err != nil || width < 300 {
		t.Errorf("chart width %v, %v", width, err)
	}
	barHeight, err := chromedp.Run(ctx, chromedp.Evaluate[float64](`document.querySelector("#compare-chart svg rect.bar").getBBox().height`))
	if err != nil || barHeight <= 0 {
		t.Errorf("bar height %v, %v", barHeight, err)
	}
	if got := browser.Count(t, ctx, "table.bench tbody tr"); got != cases {
		t.Errorf("%d table rows", got)
	}
	browser.Screenshot(t, ctx, "GRPCPLAY_COMPARE_SCREENSHOT")
}

func TestCompareInBrowser(t *testing.T) {
	ctx := browser.New(t)
	fake := newFakeComparer()
	ts := newFrontend(t, Config{Comparer: fake})

	if code := browser.Navigate(t, ctx, ts.URL+"/compare"); code != 200 {
		t.Fatalf("status %d", code)
	}
	if got := browser.Text(t, ctx, "compare-none"); !strings.HasPrefix(got, "No results yet") {
		t.Errorf("before a run: %q", got)
	}
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("compare-run"))); err != nil {
		t.Fatal(err)
	}
	// The progress indicator shows the running case.
	running, err := chromedp.Run(ctx, chromedp.Poll[string](`(t => t.startsWith("Running grpc/items") && t)(document.getElementById("compare-status").textContent)`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil {
		t.Fatalf("progress: %q, %v", running, err)
	}
	cases := len(sampleReport().Cases)
	if got := browser.Text(t, ctx, "compare-count"); got != "0 of "+strconv.Itoa(cases)+" measurements" {
		t.Errorf("count %q", got)
	}
	close(fake.release)

	// When the run ends the page reloads with the chart, drawn by Chromium.
	// The page's reload can interrupt an evaluation, so poll from here.
	var bars int
	testkit.Eventually(t, 20*time.Second, func() error {
		n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll("#compare-chart svg rect.bar").length`))
		if err == nil {
			bars = n
		}
		return testkit.Failf(bars != 0, "no bars drawn (%v)", err)
	})
	if bars != cases {
		t.Fatalf("%d bars, want %d", bars, cases)
	}
	checkChart(t, ctx, cases)

	// A second run at once is refused with a message, shown on the page.
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.ID("compare-run"))); err != nil {
		t.Fatal(err)
	}
	state, err := chromedp.Run(ctx, chromedp.Poll[string](`document.body.dataset.compare`,
		chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(20*time.Second)))
	if err != nil || state != "failed" {
		t.Fatalf("second run: state %q, %v", state, err)
	}
	if got := browser.Text(t, ctx, "compare-status"); !strings.Contains(got, "at most once every 30s") {
		t.Errorf("message %q", got)
	}
}

// The results show each case's spread over its three runs, leave out the
// columns no case filled, and say how long the run took; before a run,
// the page gives its estimate.
func TestResultsShowTheSpreadAndTheirTime(t *testing.T) {
	fake := newFakeComparer()
	close(fake.release)
	ts := newFrontend(t, Config{Comparer: fake, Estimate: 30 * time.Second})
	if _, body := testkit.Get(t, ts.URL+"/compare"); !strings.Contains(body, "about 30s on this server") {
		t.Errorf("before a run, no estimate of its time:\n%s", body)
	}
	postRun(t, ts.URL)
	waitIdle(t, ts.URL)
	_, body := testkit.Get(t, ts.URL+"/compare")
	for _, want := range []string{"<th scope=\"col\">SPREAD</th>", "<td>12%</td>", "the last run took"} {
		if !strings.Contains(body, want) {
			t.Errorf("the results lack %q", want)
		}
	}
	if strings.Contains(body, "SRV CPU") {
		t.Error("the results show the SRV CPU column, which no case filled")
	}
}
