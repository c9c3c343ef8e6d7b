package reliability_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/clientlimit/clientlimittest"
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
// reaches its maximum age and is replaced: in `serve`, and with the
// backend and the frontend in processes of their own. Fresh gRPC clients,
// the page and every other probe succeed throughout: each newcomer evicts
// an idle connection of the attack.
func TestIdleHTTP2ConnectionsDoNotLockOut(t *testing.T) {
	for i, tt := range []struct {
		name           string
		conns, sources int
		watch, apart   bool
	}{
		{"64 idle", 64, 1, false, false},
		{"64 watching", 64, 1, true, false},
		{"1000 idle", 1000, 50, false, false},
		{"1000 watching", 1000, 50, true, false},
		{"64 idle, apart", 64, 1, false, true},
		{"64 watching, apart", 64, 1, true, true},
		{"1000 idle, apart", 1000, 50, false, true},
		{"1000 watching, apart", 1000, 50, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The attacks idle: several at once cost the machine little.
			t.Parallel()
			flags := []string{"--max-connection-age", "15s", "--grpc-max-conns", evictGRPCCap}
			var p *serveProc
			if tt.apart {
				p = startApart(t, fmt.Sprintf("127.0.8.%d", 1+i), flags...)
			} else {
				p = startServe(t, flags...)
			}
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

// scrapeMetrics returns the /metrics of the server at base.
func scrapeMetrics(t *testing.T, base string) []byte {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return body
}

// metricAt reads one sample of the /metrics of the server at base, by
// its name and labels as the text format writes them; 0 when absent.
func (p *serveProc) metricAt(t *testing.T, base, series string) float64 {
	t.Helper()
	body := scrapeMetrics(t, base)
	m := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(series) + ` (\S+)$`).FindSubmatch(body)
	if m == nil {
		return 0
	}
	v, _ := strconv.ParseFloat(string(m[1]), 64)
	return v
}

// metricSum adds up the samples of one metric (all its label values, but
// those of the scrapes themselves: route /metrics) on the /metrics of the
// server at base.
func (p *serveProc) metricSum(t *testing.T, base, name string) float64 {
	t.Helper()
	body := scrapeMetrics(t, base)
	var sum float64
	for _, m := range regexp.MustCompile(`(?m)^`+regexp.QuoteMeta(name)+`(\{.*\})? (\S+)$`).FindAllSubmatch(body, -1) {
		if strings.Contains(string(m[1]), "/metrics") {
			continue
		}
		v, _ := strconv.ParseFloat(string(m[2]), 64)
		sum += v
	}
	return sum
}

// logConnCounts logs a port's evictions and refusals and the process's
// peak resident set.
func (p *serveProc) logConnCounts(t *testing.T, port string) {
	t.Helper()
	p.logConnCountsAt(t, p.metrics, port)
}

// logConnCountsAt is logConnCounts from the /metrics of the server at base.
func (p *serveProc) logConnCountsAt(t *testing.T, base, port string) {
	t.Helper()
	evicted := p.metricAt(t, base, `grpcplay_connections_evicted_total{port="`+port+`"}`)
	refused := p.metricAt(t, base, `grpcplay_connections_refused_total{port="`+port+`"}`)
	t.Logf("%s port: %v connections evicted, %v refused; peak RSS %d MiB", port, evicted, refused, p.status(t, "VmHWM")>>20)
	if evicted == 0 {
		t.Errorf("no eviction counted on the %s port", port)
	}
}

// TestKeepAliveTricklesDoNotLockOut holds twice each HTTP port's cap of
// keep-alive connections from 50 addresses, each sending a request every
// few seconds and idle in between, on the page, REST and metrics ports at
// once; a connection the server closes is opened again. Fresh visitors of
// every port are served throughout: each evicts an idle trickle.
func TestKeepAliveTricklesDoNotLockOut(t *testing.T) {
	const sources, httpCap, metricsCap = 50, 64, 32
	p := startServe(t, "--http-max-conns", strconv.Itoa(httpCap), "--rest-max-conns", strconv.Itoa(httpCap))
	c := startCanary(t, p)
	scrapes := startScrapeProbe(t, p.metrics+"/metrics")
	c.waitAfter(t, time.Now(), 2)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var opened atomic.Int64
	for _, port := range []struct {
		base, path string
		conns      int
	}{
		{p.page, "/healthz", 2 * httpCap},
		{p.rest, "/v1/hello?name=trickle", 2 * httpCap},
		{p.metrics, "/healthz", 2 * metricsCap},
	} {
		host := strings.TrimPrefix(port.base, "http://")
		for i := range port.conns {
			phase := time.Duration(i) * 3 * time.Second / time.Duration(port.conns)
			wg.Go(func() { trickle(attackSource(i, sources).String(), host, port.path, phase, &opened, stop) })
		}
	}
	defer func() {
		close(stop)
		wg.Wait()
	}()
	total := int64(4*httpCap + 2*metricsCap)
	for opened.Load() < total {
		c.waitAfter(t, time.Now(), 1)
	}
	established := time.Now()
	c.waitAfter(t, established.Add(15*time.Second), 1)
	scrapes.halt()
	c.assertNoFailureAfter(t, established.Add(connlimit.DefaultIdleAfter))
	scrapes.assertNoFailureAfter(t, established.Add(connlimit.DefaultIdleAfter))
	p.logConnCountsAt(t, p.page, "page")
	p.logConnCounts(t, "rest")
	p.logConnCounts(t, "metrics")
}

// trickle keeps one keep-alive connection from ip to host, sending a GET of
// path every 3 s, until stop; it opens a new one, a little later, whenever
// the server closes it. It starts after phase, so that the trickles do not
// all send at once.
func trickle(ip, host, path string, phase time.Duration, opened *atomic.Int64, stop <-chan struct{}) {
	select {
	case <-stop:
		return
	case <-time.After(phase):
	}
	every := time.NewTicker(3 * time.Second)
	defer every.Stop()
	for {
		conn, err := clientlimittest.Dialer(ip).Dial("tcp", host)
		if err == nil {
			opened.Add(1)
			r := bufio.NewReader(conn)
			for err == nil {
				fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", path, host)
				var resp *http.Response
				if resp, err = http.ReadResponse(r, nil); err == nil {
					_, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				if err == nil {
					select {
					case <-stop:
						err = io.EOF
					case <-every.C:
					}
				}
			}
			_ = conn.Close()
		}
		select {
		case <-stop:
			return
		case <-every.C:
		}
	}
}

// scrapeProbe scrapes a metrics endpoint every canaryEvery on a fresh
// connection, as a Prometheus server on another address would.
type scrapeProbe struct{ canary }

func startScrapeProbe(t *testing.T, url string) *scrapeProbe {
	s := &scrapeProbe{canary{changed: make(chan struct{}), stop: make(chan struct{})}}
	s.run("metrics/fresh", func(ctx context.Context) error {
		tr := &http.Transport{DisableKeepAlives: true}
		defer tr.CloseIdleConnections()
		code, body, err := getPage(ctx, &http.Client{Transport: tr}, url)
		if err == nil && (code != http.StatusOK || !strings.Contains(body, "go_goroutines")) {
			err = fmt.Errorf("GET %s: status %d: %.200s", url, code, body)
		}
		return err
	})
	t.Cleanup(s.halt)
	return s
}
