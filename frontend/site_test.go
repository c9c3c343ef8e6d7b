package frontend

import (
	"context"
	"html/template"
	"net"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/testkit"
)

// extraPage is a Page of the test's own: /extra renders in the layout,
// /extra/fail fails with a message, and /extra/run starts work in the
// background that lasts until the frontend shuts down.
func extraPage(started chan<- struct{}, ended chan<- error) Page {
	return Page{Path: "/extra", Label: "Extra", Mount: func(mux *http.ServeMux, site *Site) {
		mux.HandleFunc("GET /extra", func(w http.ResponseWriter, r *http.Request) {
			site.Render(w, r, http.StatusOK, Content{Title: "Extra", Nav: "/extra", Script: "/extra/x.js", Body: template.HTML(`<p id="extra">here</p>`)})
		})
		mux.HandleFunc("GET /extra/fail", func(w http.ResponseWriter, r *http.Request) {
			site.Error(w, r, http.StatusTeapot, "No tea here.")
		})
		mux.HandleFunc("POST /extra/run", func(w http.ResponseWriter, r *http.Request) {
			site.Go(func(ctx context.Context) {
				started <- struct{}{}
				<-ctx.Done()
				ended <- ctx.Err()
			})
		})
	}}
}

var navPattern = regexp.MustCompile(`(?s)<nav class="links".*?</nav>`)

// A Page is linked from the navigation of every page, the same on each but
// for which link is current, and renders in the layout.
func TestPagesShareTheNavigation(t *testing.T) {
	ts, _ := newStack(t, Config{Pages: []Page{extraPage(nil, nil)}})
	var navs []string
	for _, path := range []string{"/", "/live", "/nope", "/extra", "/extra/fail", "/?items=-1"} {
		_, body := testkit.Get(t, ts.URL+path)
		nav := navPattern.FindString(body)
		if !strings.Contains(nav, `<a href="/extra"`) || !strings.Contains(nav, ">Extra</a>") {
			t.Errorf("%s: the navigation lacks the page's link:\n%s", path, nav)
		}
		navs = append(navs, regexp.MustCompile(` aria-current="page"`).ReplaceAllString(nav, ""))
	}
	for i := range navs {
		if navs[i] != navs[0] {
			t.Errorf("navigation differs between pages:\n%s\n%s", navs[0], navs[i])
		}
	}
	resp, body := testkit.Get(t, ts.URL+"/extra")
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, `<a href="/extra" aria-current="page">Extra</a>`) ||
		!strings.Contains(body, `<title>Extra · grpcplay</title>`) || !strings.Contains(body, `<script src="/extra/x.js" defer>`) ||
		!strings.Contains(body, `<p id="extra">here</p>`) || !strings.Contains(body, "<footer") {
		t.Errorf("GET /extra: %d\n%s", resp.StatusCode, body)
	}
	resp, body = testkit.Get(t, ts.URL+"/extra/fail")
	if resp.StatusCode != http.StatusTeapot || !strings.Contains(body, "No tea here.") {
		t.Errorf("GET /extra/fail: %d\n%s", resp.StatusCode, body)
	}
}

// Work a Page starts in the background ends when the frontend shuts down,
// and Shutdown waits for it.
func TestShutdownEndsAPagesBackgroundWork(t *testing.T) {
	started, ended := make(chan struct{}, 1), make(chan error, 1)
	srv := New(Config{Pages: []Page{extraPage(started, ended)}}, &blockingBackend{})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	resp, err := http.Post("http://"+lis.Addr().String()+"/extra/run", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	waitFor(t, started, "the work to start")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := waitFor(t, served, "Serve to return"); err != nil {
		t.Fatalf("Serve: %v", err)
	}
	select {
	case err := <-ended:
		if err != context.Canceled {
			t.Errorf("the work's context ended with %v", err)
		}
	default:
		t.Fatal("Shutdown returned before the work ended")
	}
}
