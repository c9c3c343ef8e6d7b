package reliability_test

import (
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/connlimit"
)

// The gRPC port's cap in the eviction attacks, pinned so that the attack's
// size does not depend on the machine's descriptor limit.
const evictGRPCCap = "64"

// attackSource is the i-th of n attacking addresses, in 127.0.1.0/24: the
// canary and the frontend use 127.0.0.1.
func attackSource(i, n int) net.IP { return net.IPv4(127, 0, 1, byte(1+i%n)) }

// healthWatchMethod is grpc.health.v1's Watch, which a client may hold open
// for as long as the server runs.
const healthWatchMethod = "/grpc.health.v1.Health/Watch"

// TestIdleHTTP2ConnectionsDoNotLockOut holds idle HTTP/2 connections to
// the gRPC port, many more than its cap, each with or without a health
// Watch, through the moment the frontend's own connection to the backend
// reaches its maximum age and is replaced. Fresh gRPC clients, the page
// and every other probe succeed throughout: each newcomer evicts an idle
// connection of the attack.
func TestIdleHTTP2ConnectionsDoNotLockOut(t *testing.T) {
	for _, tt := range []struct {
		name           string
		conns, sources int
		watch          bool
	}{
		{"64 idle", 64, 1, false},
		{"64 watching", 64, 1, true},
		{"1000 idle", 1000, 50, false},
		{"1000 watching", 1000, 50, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The attacks idle: four at once cost the machine little.
			t.Parallel()
			p := startServe(t, "--max-connection-age", "15s", "--grpc-max-conns", evictGRPCCap)
			c := startCanary(t, p)
			c.waitAfter(t, time.Now(), 2)
			for i := range tt.conns {
				rc := dialRawFrom(t, p.grpc, attackSource(i, tt.sources))
				if tt.watch {
					if id := rc.open(grpcHeaders(healthWatchMethod), false); id != 0 {
						rc.request(id, nil)
					}
				}
			}
			established := time.Now()
			// Past the frontend's connection age (15 s, less up to 10% of
			// jitter) and its reconnection, with the attack in place.
			c.waitAfter(t, established.Add(20*time.Second), 1)
			c.assertNoFailureAfter(t, established.Add(connlimit.DefaultIdleAfter))
			p.logConnCounts(t, "grpc")
		})
	}
}

// TestSilentConnectionsDoNotLockOut re-opens, continuously, raw TCP
// connections to the gRPC port that never send a preface: each is evicted
// by the next newcomer, oldest first, and an honest client's connection,
// which sends its preface and call at once, is never the oldest.
func TestSilentConnectionsDoNotLockOut(t *testing.T) {
	const conns, sources = 200, 50
	p := startServe(t, "--grpc-max-conns", evictGRPCCap)
	c := startCanary(t, p)
	c.waitAfter(t, time.Now(), 2)
	stop := make(chan struct{})
	// The attack's pace: at most 200 connections a second in all, many
	// times the port's cap each second, without burning the CPU the
	// canary needs.
	pace := time.NewTicker(5 * time.Millisecond)
	defer pace.Stop()
	var opened atomic.Int64
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: attackSource(i, sources)}, Timeout: 5 * time.Second}
			for {
				select {
				case <-stop:
					return
				case <-pace.C:
				}
				conn, err := d.Dial("tcp", p.grpc)
				if err != nil {
					continue
				}
				opened.Add(1)
				closed := make(chan struct{})
				go func() {
					_, _ = io.Copy(io.Discard, conn)
					close(closed)
				}()
				select {
				case <-stop:
				case <-closed:
				}
				_ = conn.Close()
				<-closed
			}
		})
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	for opened.Load() < conns {
		c.waitAfter(t, time.Now(), 1)
	}
	established := time.Now()
	c.waitAfter(t, established.Add(10*time.Second), 1)
	t.Logf("%d silent connections opened", opened.Load())
	c.assertNoFailureAfter(t, established)
	p.logConnCounts(t, "grpc")
}

// metric reads one sample of the backend's /metrics, by its name and
// labels as the text format writes them; 0 when absent.
func (p *serveProc) metric(t *testing.T, series string) float64 {
	t.Helper()
	resp, err := http.Get(p.metrics + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// logConnCounts logs a port's evictions and refusals and the process's
// peak resident set.
func (p *serveProc) logConnCounts(t *testing.T, port string) {
	t.Helper()
	evicted := p.metric(t, `grpcplay_connections_evicted_total{port="`+port+`"}`)
	refused := p.metric(t, `grpcplay_connections_refused_total{port="`+port+`"}`)
	t.Logf("%s port: %v connections evicted, %v refused; peak RSS %d MiB", port, evicted, refused, p.status(t, "VmHWM")>>20)
	if evicted == 0 {
		t.Errorf("no eviction counted on the %s port", port)
	}
}
