// Package clientlimittest lets a test be several clients: each of
// loopback's addresses (127.0.0.1 to 127.255.255.254) is a client of its
// own to clientlimit, and dialing from one needs no set-up on Linux.
package clientlimittest

import (
	"net"
	"net/http"
	"testing"
	"time"
)

// Dialer dials from ip.
func Dialer(ip string) *net.Dialer {
	return &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
}

// Forwarding is hc as a proxy that forwards for forwardedFor: each request
// carries it as X-Forwarded-For.
func Forwarding(hc *http.Client, forwardedFor string) *http.Client {
	c := *hc
	c.Transport = forwarding{next: hc.Transport, forwardedFor: forwardedFor}
	return &c
}

type forwarding struct {
	next         http.RoundTripper
	forwardedFor string
}

func (f forwarding) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.forwardedFor)
	return f.next.RoundTrip(r)
}

// Client is an HTTP client whose connections come from ip. It keeps enough
// idle connections for a test's workers; the test's cleanup closes them.
func Client(t testing.TB, ip string) *http.Client {
	t.Helper()
	tr := &http.Transport{DialContext: Dialer(ip).DialContext, MaxIdleConnsPerHost: 200}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}
}
