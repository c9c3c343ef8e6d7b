package reliability_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpcplay/grpcplay/api"
)

// canaryEvery is how often each probe of the canary runs.
const canaryEvery = 100 * time.Millisecond

// canaryCallTimeout bounds one probe. An honest call on loopback takes
// milliseconds, and a page a few backend calls; a probe that needs this
// long has failed even on a machine whose cores are all busy elsewhere.
const canaryCallTimeout = 10 * time.Second

// probeResult is one canary call: which probe, when it started, how it ended.
type probeResult struct {
	probe string
	start time.Time
	err   error
}

// canary is what an honest user sees during an attack: a page GET, a REST
// call and a gRPC call every 100 ms, each both on a fresh connection and on
// one long-lived connection, six probes in all.
type canary struct {
	mu      sync.Mutex
	results []probeResult
	changed chan struct{} // closed and replaced at every result
	stop    chan struct{}
	wg      sync.WaitGroup
	probes  []string
}

// startCanary starts probing p; the test's cleanup stops it.
func startCanary(t *testing.T, p *serveProc) *canary {
	t.Helper()
	c := &canary{changed: make(chan struct{}), stop: make(chan struct{})}
	longHTTP := &http.Transport{MaxIdleConnsPerHost: 1}
	long, err := grpc.NewClient(p.grpc, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	fresh := func(do func(*http.Client) error) func(context.Context) error {
		return func(ctx context.Context) error {
			tr := &http.Transport{DisableKeepAlives: true}
			defer tr.CloseIdleConnections()
			return do(&http.Client{Transport: tr})
		}
	}
	longLived := func(do func(*http.Client) error) func(context.Context) error {
		return func(context.Context) error { return do(&http.Client{Transport: longHTTP}) }
	}
	page := func(ctx context.Context) func(*http.Client) error {
		return func(hc *http.Client) error { return pageOK(ctx, hc, p.page+"/") }
	}
	rest := func(ctx context.Context) func(*http.Client) error {
		return func(hc *http.Client) error { return restOK(ctx, hc, p.rest+"/v1/hello?name=canary") }
	}
	c.run("page/fresh", func(ctx context.Context) error { return fresh(page(ctx))(ctx) })
	c.run("page/long", func(ctx context.Context) error { return longLived(page(ctx))(ctx) })
	c.run("rest/fresh", func(ctx context.Context) error { return fresh(rest(ctx))(ctx) })
	c.run("rest/long", func(ctx context.Context) error { return longLived(rest(ctx))(ctx) })
	c.run("grpc/fresh", func(ctx context.Context) error { return grpcFresh(ctx, p.grpc) })
	c.run("grpc/long", func(ctx context.Context) error { return grpcHello(ctx, long) })
	t.Cleanup(func() {
		c.halt()
		longHTTP.CloseIdleConnections()
		_ = long.Close()
	})
	return c
}

// run starts one probe that calls do every canaryEvery until halt.
func (c *canary) run(name string, do func(context.Context) error) {
	c.probes = append(c.probes, name)
	c.wg.Go(func() {
		tick := time.NewTicker(canaryEvery)
		defer tick.Stop()
		for {
			start := time.Now()
			ctx, cancel := context.WithTimeout(context.Background(), canaryCallTimeout)
			err := do(ctx)
			cancel()
			c.record(probeResult{probe: name, start: start, err: err})
			select {
			case <-c.stop:
				return
			case <-tick.C:
			}
		}
	})
}

func (c *canary) record(r probeResult) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.results = append(c.results, r)
	close(c.changed)
	c.changed = make(chan struct{})
}

// halt stops the probes and waits for them; it may be called twice.
func (c *canary) halt() {
	select {
	case <-c.stop:
	default:
		close(c.stop)
	}
	c.wg.Wait()
}

// waitAfter waits until every probe has n results that started at or after
// since, so that a test knows the canary has looked at the period it asserts.
func (c *canary) waitAfter(t *testing.T, since time.Time, n int) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		c.mu.Lock()
		changed := c.changed
		counts := map[string]int{}
		for _, r := range c.results {
			if !r.start.Before(since) {
				counts[r.probe]++
			}
		}
		c.mu.Unlock()
		ready := true
		for _, p := range c.probes {
			ready = ready && counts[p] >= n
		}
		if ready {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("canary: not %d probes of each kind since %v within 30s: %v", n, since.Format(time.StampMilli), counts)
		}
	}
}

// failuresAfter lists the failed probes that started at or after since.
func (c *canary) failuresAfter(since time.Time) (failed []probeResult, total int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.results {
		if r.start.Before(since) {
			continue
		}
		total++
		if r.err != nil {
			failed = append(failed, r)
		}
	}
	return failed, total
}

// assertAllSucceeded stops the canary and fails the test if any probe failed
// since it started.
func (c *canary) assertAllSucceeded(t *testing.T) {
	t.Helper()
	c.halt()
	failed, total := c.failuresAfter(time.Time{})
	if len(failed) > 0 {
		t.Errorf("canary: %d of %d probes failed during the attack:\n%s", len(failed), total, describe(failed))
	}
	t.Logf("canary: %d probes, all succeeded", total)
}

// assertSucceededBut stops the canary and fails the test if a probe failed
// other than the ones named, which must instead have recovered within
// after attackEnd: the probes of the face under attack.
func (c *canary) assertSucceededBut(t *testing.T, attackEnd time.Time, within time.Duration, attacked ...string) {
	t.Helper()
	back := attackEnd.Add(within)
	c.waitAfter(t, back, 3)
	c.halt()
	failed, total := c.failuresAfter(time.Time{})
	during := 0
	for _, r := range failed {
		switch {
		case !slices.Contains(attacked, r.probe):
			t.Errorf("canary: %s failed during an attack on another face: %v", r.probe, r.err)
		case !r.start.Before(back):
			t.Errorf("canary: %s failed %v after the attack ended: %v", r.probe, r.start.Sub(attackEnd), r.err)
		default:
			during++
		}
	}
	t.Logf("canary: %d probes; %d of %v failed during the attack, none after %v", total, during, attacked, within)
}

// assertRecovered waits until every probe has run a few times more than
// within after attackEnd, then stops the canary and fails the test if any
// probe that started then failed: the service is back within that time.
func (c *canary) assertRecovered(t *testing.T, attackEnd time.Time, within time.Duration) {
	t.Helper()
	back := attackEnd.Add(within)
	c.waitAfter(t, back, 3)
	c.halt()
	failed, total := c.failuresAfter(back)
	if len(failed) > 0 {
		t.Errorf("canary: %d of %d probes failed more than %v after the attack ended:\n%s", len(failed), total, within, describe(failed))
	}
	during, all := c.failuresAfter(time.Time{})
	t.Logf("canary: %d of %d probes failed in all; none from %v after the attack", len(during), all, within)
}

func describe(rs []probeResult) string {
	var b strings.Builder
	for i, r := range rs {
		if i == 10 {
			fmt.Fprintf(&b, "  ... and %d more\n", len(rs)-i)
			break
		}
		fmt.Fprintf(&b, "  %s %s: %v\n", r.start.Format("15:04:05.000"), r.probe, r.err)
	}
	return b.String()
}

// restOK is one REST call that must answer the greeting.
func restOK(ctx context.Context, hc *http.Client, url string) error {
	code, body, err := getPage(ctx, hc, url)
	if err != nil {
		return err
	}
	if code != http.StatusOK || !strings.Contains(body, "Hello canary!") {
		return fmt.Errorf("GET %s: status %d: %.300s", url, code, body)
	}
	return nil
}

// grpcFresh makes one sayHello on a connection of its own.
func grpcFresh(ctx context.Context, target string) error {
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	return grpcHello(ctx, conn)
}

func grpcHello(ctx context.Context, conn *grpc.ClientConn) error {
	reply, err := api.NewApiClient(conn).SayHello(ctx, &api.HelloRequest{Name: "canary"})
	if err != nil {
		return err
	}
	if reply.GetMessage() != "Hello canary!" {
		return fmt.Errorf("sayHello: %q", reply.GetMessage())
	}
	return nil
}

// TestCanaryOnAQuietServer shows the canary itself: with no attack, every
// probe succeeds, so any failure in an attack test is the attack's doing.
func TestCanaryOnAQuietServer(t *testing.T) {
	p := startServe(t)
	c := startCanary(t, p)
	c.waitAfter(t, time.Now(), 5)
	c.assertAllSucceeded(t)
}

// assertNoFailureAfter stops the canary and fails the test if a probe that
// started at or after since failed.
func (c *canary) assertNoFailureAfter(t *testing.T, since time.Time) {
	t.Helper()
	c.halt()
	failed, total := c.failuresAfter(since)
	if len(failed) > 0 {
		t.Errorf("canary: %d of %d probes failed during the attack:\n%s", len(failed), total, describe(failed))
	}
	before, all := c.failuresAfter(time.Time{})
	t.Logf("canary: %d probes during the attack, %d failed; %d of %d failed in all", total, len(failed), len(before), all)
}
