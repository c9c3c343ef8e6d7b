package reliability_test

import (
	"fmt"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/resolver"
	"google.golang.org/grpc/resolver/manual"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/frontend"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// TestRollingRestartLosesNoPageRequest restarts three backend processes one
// after the other, with SIGTERM, under page load, as a deployment does. The
// frontend's client spreads calls over the three with round_robin. Each
// backend drains its calls and exits; the frontend sends new calls to the
// other two meanwhile, and comes back to the restarted one by itself. Not
// one page request may fail.
// startReplicas starts three backend processes and a frontend that
// balances over them, and returns once every backend has served a page's
// calls.
func startReplicas(t *testing.T) (procs [3]*backendProc, url string, hc *http.Client) {
	var addrs []resolver.Address
	for i := range procs {
		procs[i] = startBackendProc(t, "127.0.0.1:0")
		addrs = append(addrs, resolver.Address{Addr: procs[i].addr})
	}
	// grpc-go has no "ipv4:" target scheme listing several addresses (that
	// is grpc's C core), so a fixed resolver gives the client the three
	// addresses, as DNS would for a headless service.
	backends := manual.NewBuilderWithScheme("backends")
	backends.InitialState(resolver.State{Addresses: addrs})
	c := testkit.NewClient(t, backends.Scheme()+":///grpcplay", client.WithDialOptions(grpc.WithResolvers(backends)))
	url = startFrontend(t, frontend.Config{Timeout: 30 * time.Second}, c) + "/"
	hc = newHTTPClient(t)
	ctx := t.Context()
	// Every backend takes calls before the first one stops. A backend whose
	// connection is not ready yet gets none from round_robin, and the
	// backends log each call through a buffer (telemetry.BufferedWriter), up
	// to 100 ms late: so pages are read until every backend has logged some.
	testkit.Eventually(t, 30*time.Second, func() error {
		if err := pageOK(ctx, hc, url); err != nil {
			t.Fatal(err)
		}
		for _, p := range procs {
			if p.log.calls.Load() == 0 {
				return fmt.Errorf("backend %s logs no page calls (round_robin spreads them)", p.addr)
			}
		}
		return nil
	})
	return procs, url, hc
}

func TestRollingRestartLosesNoPageRequest(t *testing.T) {
	procs, url, hc := startReplicas(t)
	ctx := t.Context()

	stop := make(chan struct{})
	pages := startLoad(10, stop, func() error { return pageOK(ctx, hc, url) })
	defer func() {
		select {
		case <-stop:
		default:
			close(stop)
			pages.wait()
		}
	}()
	for i, p := range procs {
		served := p.log.calls.Load()
		start := time.Now()
		p.signal(t, syscall.SIGTERM, 20*time.Second)
		if p.err != nil {
			t.Fatalf("backend %s after SIGTERM: %v, want exit status 0\n%s", p.addr, p.err, p.log)
		}
		procs[i] = startBackendProc(t, p.addr)
		// As a deployment waits for readiness, the next backend stops only
		// once this one takes calls again: the frontend found it by itself.
		testkit.Eventually(t, 30*time.Second, func() error {
			n := procs[i].log.calls.Load()
			return testkit.Failf(n >= 30, "restarted backend %s served %d page calls, want 30", p.addr, n)
		})
		t.Logf("backend %s: served %d calls, was stopped, and served again %v later",
			p.addr, served, time.Since(start).Round(time.Millisecond))
	}
	close(stop)
	errs := pages.wait()
	requests, failures := pages.requests.Load(), pages.failures.Load()
	t.Logf("rolling restart of 3 backends under 10 page readers: %d page requests, %d failed", requests, failures)
	if failures != 0 {
		t.Fatalf("%d of %d page requests failed during the rolling restart; first: %v", failures, requests, errs)
	}
}

// TestKill9MidStream kills the only backend with SIGKILL while a stream
// from it is being read. Nothing drains: the connection just breaks. The
// reader gets Unavailable at once, the page answers 503 without waiting
// for its deadline, and when a backend comes back on the same port the page
// recovers by itself, with no restart of the frontend.
// killMidStream reads a long stream from p and kills p with SIGKILL a
// thousand items in: the reader must get Unavailable, and soon.
func killMidStream(t *testing.T, p *backendProc, c *client.Client) {
	ctx := t.Context()
	const length = 10_000_000
	var got int
	var streamErr error
	var killed time.Time
	for _, err := range c.GetStream(ctx, length) {
		if err != nil {
			streamErr = err
			break
		}
		if got++; got == 1000 {
			killed = time.Now()
			if err := p.cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	noticed := time.Since(killed)
	t.Logf("stream of %d items: read %d, then %v, %v after kill -9", length, got, streamErr, noticed.Round(time.Millisecond))
	if got >= length || status.Code(streamErr) != codes.Unavailable {
		t.Fatalf("stream after kill -9: %d items and error %v; want fewer than %d items and Unavailable", got, streamErr, length)
	}
	// The stream's own deadline is 5 minutes; a dead backend must show long
	// before that. The bound is loose for a busy machine.
	if noticed > time.Minute {
		t.Errorf("the reader learnt of the kill after %v", noticed)
	}
}

func TestKill9MidStream(t *testing.T) {
	p := startBackendProc(t, "127.0.0.1:0")
	c := testkit.NewClient(t, p.addr)
	// Long, so that the bound on the 503 below is far from what a busy
	// machine adds to a refused connection's retries.
	const pageTimeout = 2 * time.Minute
	url := startFrontend(t, frontend.Config{Timeout: pageTimeout}, c) + "/"
	hc := newHTTPClient(t)
	ctx := t.Context()
	if err := pageOK(ctx, hc, url); err != nil {
		t.Fatal(err)
	}

	killMidStream(t, p, c)
	<-p.exited

	start := time.Now()
	code, body, err := getPage(ctx, hc, url)
	took := time.Since(start)
	t.Logf("page with the backend dead: %d in %v", code, took.Round(time.Millisecond))
	if err != nil || code != http.StatusServiceUnavailable || !strings.Contains(body, "unreachable") {
		t.Fatalf("page with the backend dead: %d, %v; want 503 saying the backend is unreachable\n%.500s", code, err, body)
	}
	if took > pageTimeout/4 {
		t.Errorf("the 503 took %v; it must come long before the page's %v deadline", took, pageTimeout)
	}

	again := startBackendProc(t, p.addr)
	start = time.Now()
	testkit.Eventually(t, 30*time.Second, func() error {
		code, _, err := getPage(ctx, hc, url)
		if err != nil {
			t.Fatal(err)
		}
		return testkit.Failf(code == http.StatusOK, "the page is %d after the backend returned, want 200", code)
	})
	t.Logf("page back to 200 %v after the backend %s returned", time.Since(start).Round(time.Millisecond), again.addr)
}
