package interop_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/grpcplay/grpcplay/frontend"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// Our frontend in front of the post's server: the post's page, and readiness
// although that server has no health service.
func TestOurFrontendAgainstPostServer(t *testing.T) {
	c := testkit.NewClient(t, startPostServer(t))
	web := httptest.NewServer(frontend.New(frontend.Config{}, c).Handler())
	t.Cleanup(web.Close)

	resp, page := testkit.GetWith(t, web.Client(), web.URL+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET / = %d:\n%s", resp.StatusCode, page)
	}
	if !strings.Contains(page, "Hello Gonzalo!") {
		t.Errorf("GET / lacks the greeting:\n%s", page)
	}
	// getAll(10) shows name 1..10 and getStream(5) name 1..5 again; "name 6"
	// to "name 9" cannot be mistaken for part of "name 10".
	for _, want := range []struct {
		text string
		min  int
	}{{"name 10", 1}, {"name 9", 1}, {"name 6", 1}, {"name 5", 2}, {"name 2", 2}} {
		if n := strings.Count(page, want.text); n < want.min {
			t.Errorf("GET / shows %q %d times, want at least %d:\n%s", want.text, n, want.min, page)
		}
	}

	if resp, body := testkit.GetWith(t, web.Client(), web.URL+"/readyz"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /readyz = %d %q, want 200 against a server without health", resp.StatusCode, body)
	}
}
