package reliability_test

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/frontend"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// loadDuration is how long TestSustainedLoad runs: 20s, or
// GRPCPLAY_LOAD_DURATION (such as "5s") for a quicker local run.
func loadDuration(t *testing.T) time.Duration {
	raw := os.Getenv("GRPCPLAY_LOAD_DURATION")
	if raw == "" {
		return 20 * time.Second
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < time.Second || d > 10*time.Minute {
		t.Fatalf("GRPCPLAY_LOAD_DURATION=%q: want a duration from 1s to 10m", raw)
	}
	return d
}

// memory is a snapshot of the process's memory after a GC: what the servers,
// the client and the load hold live, and what the OS gave the process.
type memory struct {
	heapInuse  uint64
	heapAlloc  uint64
	rss        uint64
	goroutines int
}

func snapshot(t *testing.T) memory {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return memory{heapInuse: ms.HeapInuse, heapAlloc: ms.HeapAlloc, rss: rss(t), goroutines: runtime.NumGoroutine()}
}

func (m memory) String() string {
	return fmt.Sprintf("heap in use %.1f MiB (live %.1f MiB), RSS %.1f MiB, %d goroutines",
		mib(m.heapInuse), mib(m.heapAlloc), mib(m.rss), m.goroutines)
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

// rss is the process's resident set size, from /proc (0 where there is none).
func rss(t *testing.T) uint64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	return 0
}

// TestSustainedLoad runs 50 concurrent callers of the backend (through the
// client library) and 50 concurrent page readers of the frontend for
// loadDuration. No call may fail, and memory must stay flat: a leak of even
// a few hundred bytes a request shows over the tens of thousands of
// requests it makes.
//
// Memory is measured after a GC, while the load runs, at a warm point (a
// quarter of the way in) and at the end. The bound is generous, because the
// heap also holds whatever the 100 requests in flight hold at that instant:
// the end may exceed the warm point by at most half, plus 8 MiB. RSS is
// logged but not bounded: under -race it includes the detector's shadow
// memory, which the OS does not take back.
// oneOfEachCall makes the n-th call of a rotation over the three methods
// and checks its answer.
func oneOfEachCall(ctx context.Context, c *client.Client, n int64, length int32) error {
	switch n % 3 {
	case 0:
		got, err := c.SayHello(ctx, "load")
		if err == nil && got != "Hello load!" {
			err = fmt.Errorf("sayHello = %q", got)
		}
		return err
	case 1:
		items, err := c.GetAll(ctx, length)
		if err == nil && len(items) != int(length) {
			err = fmt.Errorf("getAll(%d) gave %d items", length, len(items))
		}
		return err
	}
	got := 0
	for _, err := range c.GetStream(ctx, length) {
		if err != nil {
			return err
		}
		got++
	}
	if got != int(length) {
		return fmt.Errorf("getStream(%d) gave %d items", length, got)
	}
	return nil
}

func logMemory(t *testing.T, before, warm, end, after memory, warmRequests int64) {
	t.Logf("memory before load: %v", before)
	t.Logf("memory warm (after %d requests): %v", warmRequests, warm)
	t.Logf("memory at the end of the load: %v", end)
	t.Logf("memory after the load: %v", after)
}

func TestSustainedLoad(t *testing.T) {
	d := loadDuration(t)
	b := backendtest.Start(t, backend.Config{})
	// The deadlines are raised (30s for the page and for direct calls),
	// because the point here is that no request fails, not how fast a
	// shared 2-core machine answers: speed is for the benchmarks.
	c := testkit.NewClient(t, b.Addr, client.WithTimeout(30*time.Second))
	url := startFrontend(t, frontend.Config{Timeout: 30 * time.Second}, c) + "/"
	hc := newHTTPClient(t)
	ctx := t.Context()
	if err := pageOK(ctx, hc, url); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t)

	const workers = 50
	const length = 100
	stop := make(chan struct{})
	var calls atomic.Int64
	backendLoad := startLoad(workers, stop, func() error { return oneOfEachCall(ctx, c, calls.Add(1), length) })
	pageLoad := startLoad(workers, stop, func() error { return pageOK(ctx, hc, url) })

	start := time.Now()
	// The load runs for a set time: these sleeps are its clock, not a
	// stand-in for an event.
	time.Sleep(d / 4)
	warm := snapshot(t)
	warmRequests := backendLoad.requests.Load() + pageLoad.requests.Load()
	time.Sleep(d - time.Since(start))
	end := snapshot(t)
	close(stop)
	backendErrs := backendLoad.wait()
	pageErrs := pageLoad.wait()
	elapsed := time.Since(start)

	hc.CloseIdleConnections()
	var after memory
	testkit.Eventually(t, 10*time.Second, func() error {
		after = snapshot(t)
		return testkit.Failf(after.goroutines <= before.goroutines+5, "%d goroutines, not back near the %d before the load", after.goroutines, before.goroutines)
	})

	br, bf := backendLoad.requests.Load(), backendLoad.failures.Load()
	pr, pf := pageLoad.requests.Load(), pageLoad.failures.Load()
	t.Logf("load: %d workers on the backend and %d on the page for %v", workers, workers, elapsed.Round(time.Millisecond))
	t.Logf("backend calls: %d (%.0f/s), failed %d", br, float64(br)/elapsed.Seconds(), bf)
	t.Logf("page requests: %d (%.0f/s), failed %d", pr, float64(pr)/elapsed.Seconds(), pf)
	logMemory(t, before, warm, end, after, warmRequests)

	if bf != 0 || pf != 0 {
		t.Errorf("failed calls under load: backend %d (first: %v), page %d (first: %v)", bf, backendErrs, pf, pageErrs)
	}
	if br == 0 || pr == 0 {
		t.Errorf("no load was made: %d backend calls, %d page requests", br, pr)
	}
	if limit := warm.heapInuse + warm.heapInuse/2 + 8<<20; end.heapInuse > limit {
		t.Errorf("heap grew under steady load: %.1f MiB at the warm point, %.1f MiB at the end (limit %.1f MiB)",
			mib(warm.heapInuse), mib(end.heapInuse), mib(limit))
	}
}
