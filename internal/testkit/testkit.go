// Package testkit is what the tests of grpcplay share: waiting for a
// condition, an HTTP GET, a client of a backend, and loopback listeners on
// free ports. Every helper fails the test it is given, so that a test reads
// as the steps it takes.
package testkit

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/client"
)

// Eventually calls check until it returns nil, and fails the test with
// check's last error when within has passed first. It is for what ends a
// moment after the event a test can see (a span ends after its reply, a
// counter is bumped after the handler returns); a test that can wait on
// the event itself (a channel, a reply) waits on that instead.
func Eventually(t testing.TB, within time.Duration, check func() error) {
	t.Helper()
	deadline := time.Now().Add(within)
	pause := time.Millisecond
	for {
		err := check()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not within %v: %v", within, err)
		}
		// Quick at first, for what is nearly done; then at most every
		// 100ms, so that a slow wait costs the machine little.
		timer := time.NewTimer(pause)
		select {
		case <-timer.C:
		case <-t.Context().Done():
			timer.Stop()
			t.Fatalf("test ended while waiting: %v", err)
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// Failf is the error of a condition for Eventually: nil when ok holds.
func Failf(ok bool, format string, args ...any) error {
	if ok {
		return nil
	}
	return fmt.Errorf(format, args...)
}

// getTimeout bounds a test's GET, so a server that hangs fails the test
// instead of holding it until go test's own timeout.
const getTimeout = 30 * time.Second

// Get fetches url with http.DefaultClient and returns the response, its
// body already read and closed, and the body.
func Get(t testing.TB, url string) (*http.Response, string) {
	t.Helper()
	return GetWith(t, http.DefaultClient, url)
}

// GetWith is Get through hc, such as an httptest.Server's TLS client.
func GetWith(t testing.TB, hc *http.Client, url string) (*http.Response, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), getTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: reading the body: %v", url, err)
	}
	return resp, string(body)
}

// NewClient is client.New(target, opts...), closed when the test ends.
func NewClient(t testing.TB, target string, opts ...client.Option) *client.Client {
	t.Helper()
	c, err := client.New(target, opts...)
	if err != nil {
		t.Fatalf("client.New(%q): %v", target, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// Listen opens a listener on a free loopback port, closed when the test
// ends (closing it twice is harmless).
func Listen(t testing.TB) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = lis.Close() })
	return lis
}

// FreeAddr is a loopback address that nothing listens on, for a test of
// what happens when a server is down, or one that starts there later. The
// port was free a moment ago; another process could take it, which on
// loopback in a test run is rare enough.
func FreeAddr(t testing.TB) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := lis.Addr().String()
	if err := lis.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}
