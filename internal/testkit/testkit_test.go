package testkit_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestEventuallyReturnsOnceTheCheckPasses(t *testing.T) {
	var calls atomic.Int32
	testkit.Eventually(t, 10*time.Second, func() error {
		return testkit.Failf(calls.Add(1) >= 3, "called %d times", calls.Load())
	})
	if n := calls.Load(); n != 3 {
		t.Fatalf("check called %d times, want 3", n)
	}
}

func TestGetReadsTheBody(t *testing.T) {
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
		fmt.Fprint(w, r.URL.Path)
	}))
	defer ts.Close()
	resp, body := testkit.Get(t, ts.URL+"/tea")
	if resp.StatusCode != http.StatusTeapot || body != "/tea" {
		t.Fatalf("got %d %q", resp.StatusCode, body)
	}
}

func TestListenIsOnLoopback(t *testing.T) {
	lis := testkit.Listen(t)
	if addr := lis.Addr().String(); addr[:10] != "127.0.0.1:" {
		t.Fatalf("listening on %s", addr)
	}
}

func TestFailf(t *testing.T) {
	if err := testkit.Failf(true, "x"); err != nil {
		t.Fatal(err)
	}
	if err := testkit.Failf(false, "want %d", 3); err == nil || !errors.Is(err, err) || err.Error() != "want 3" {
		t.Fatalf("Failf(false) = %v", err)
	}
}
