package compare

import (
	"net/http"
	"net/http/httptest"
	"os"
	"testing"
)

func TestServedHosts(t *testing.T) {
	hosts := newServedHosts([]string{"Play.Example.org."})
	name, _ := os.Hostname()
	for _, h := range []string{
		"localhost:5000", "LOCALHOST", "app.localhost:5000", "127.0.0.1:5000", "[::1]:5000",
		"192.0.2.7", "play.example.org:443", "play.example.org.", name, name + ":5000",
	} {
		if !hosts.serves(h) {
			t.Errorf("Host %q refused, want served", h)
		}
	}
	for _, h := range []string{"evil.example:5000", "localhost.evil.example", "example.org", "", "[::1"} {
		if hosts.serves(h) {
			t.Errorf("Host %q served, want refused", h)
		}
	}
}

// The rebinding shape: Host and Origin agree, on a name that is not ours.
func TestSameSiteRefusesRebinding(t *testing.T) {
	s := &page{hosts: newServedHosts(nil), crossOrigin: http.NewCrossOriginProtection()}
	r := httptest.NewRequest("POST", "http://evil.example:5000/compare/run", nil)
	r.Header.Set("Origin", "http://evil.example:5000")
	if ref := s.sameSite(r); ref == nil {
		t.Fatal("a rebound request passed")
	}
	r = httptest.NewRequest("POST", "http://localhost:5000/compare/run", nil)
	r.Header.Set("Origin", "http://localhost:5000")
	if ref := s.sameSite(r); ref != nil {
		t.Fatalf("the page's own request was refused: %v", ref.message)
	}
}
