package frontend

import (
	"io"
	"net/http"
	"testing"
)

// BenchmarkPage measures GET / end to end: HTTP, three concurrent gRPC calls
// to a loopback backend, and rendering.
func BenchmarkPage(b *testing.B) {
	ts, _ := newStack(b, Config{})
	tr := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(tr.CloseIdleConnections)
	hc := &http.Client{Transport: tr}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := hc.Get(ts.URL + "/")
			if err != nil {
				b.Error(err)
				return
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != http.StatusOK {
				b.Errorf("status %d, %v", resp.StatusCode, err)
				return
			}
		}
	})
}

// BenchmarkLiveEvents measures streaming 1000 items as Server-Sent Events.
func BenchmarkLiveEvents(b *testing.B) {
	ts, _ := newStack(b, Config{})
	b.ReportAllocs()
	for b.Loop() {
		resp, err := http.Get(ts.URL + "/live/events?length=1000")
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil {
			b.Fatal(err)
		}
	}
}
