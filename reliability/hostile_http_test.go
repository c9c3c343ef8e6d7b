package reliability_test

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/clientlimit/clientlimittest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// The attacks on the HTTP faces of `grpcplay serve`: the page, the REST
// gateway and the metrics ports. Each attacker comes from a loopback
// address of its own (127.0.0.2 and up) and the canary from 127.0.0.1, so
// that the per-client caps see them as different clients, as they would be.

// attackFor bounds each flood: long enough for a canary probe of each kind
// to run many times, short enough to keep the set quick.
const attackFor = 3 * time.Second

// flood runs workers that call do until attackFor has passed, and returns
// how many calls got each status (0 for a transport error).
func flood(workers int, do func() (int, error)) map[int]int {
	var mu sync.Mutex
	counts := map[int]int{}
	var wg sync.WaitGroup
	end := time.Now().Add(attackFor)
	for range workers {
		wg.Go(func() {
			for time.Now().Before(end) {
				code, err := do()
				if err != nil {
					code = 0
				}
				mu.Lock()
				counts[code]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return counts
}

// send makes one request and reads its whole answer.
func send(hc *http.Client, method, rawURL, body string, header ...string) (int, http.Header, string, error) {
	req, err := http.NewRequest(method, rawURL, strings.NewReader(body))
	if err != nil {
		return 0, nil, "", err
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	if h := req.Header.Get("Host"); h != "" {
		req.Host = h
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	got, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(got), err
}

// peakRSS fails the test when the process's peak resident set passed
// limit, and logs it.
func peakRSS(t *testing.T, p *serveProc, limit int64) {
	t.Helper()
	peak := p.status(t, "VmHWM")
	t.Logf("peak RSS %.0f MiB (bound %.0f MiB)", mib(uint64(peak)), mib(uint64(limit)))
	if peak > limit {
		t.Errorf("peak RSS %.0f MiB, over the bound of %.0f MiB", mib(uint64(peak)), mib(uint64(limit)))
	}
}

// TestRESTIsGetOnly: every method but GET, whatever its body, is a 405
// with Allow: GET, so a urlencoded POST can no longer pass the item budget
// and the UTF-8 check; 120 clients posting length=100000 cost no memory,
// and no input is answered with a 500.
func TestRESTIsGetOnly(t *testing.T) {
	p := startServe(t)
	c := startCanary(t, p)
	hc := clientlimittest.Client(t, "127.0.0.2")
	for _, method := range []string{"POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"} {
		for path, body := range map[string]string{"/v1/items": "length=100000", "/v1/hello": "name=%ff", "/v1/stream": "length=10000000"} {
			code, h, _, err := send(hc, method, p.rest+path, body)
			if err != nil || code != http.StatusMethodNotAllowed || h.Get("Allow") != "GET" {
				t.Errorf("%s %s: %d, Allow %q, %v; want 405 and Allow: GET", method, path, code, h.Get("Allow"), err)
			}
		}
	}
	for _, path := range []string{"/v1/hello?name=%ff", "/v1/hello?name=%", "/v1/items?length=1e9", "/v1/hello?name=x;y", "/v1/stream?length=-1", "/v1/%ff"} {
		code, h, body, err := send(hc, "GET", p.rest+path, "name=%ff")
		if err != nil || code >= 500 || code == http.StatusOK {
			t.Errorf("GET %s: %d %.200q %v; want a 4xx", path, code, body, err)
		}
		if h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("GET %s: no X-Content-Type-Options: nosniff", path)
		}
	}
	counts := flood(120, func() (int, error) {
		code, _, _, err := send(hc, "POST", p.rest+"/v1/items", "length=100000")
		return code, err
	})
	t.Logf("120 clients posting length=100000 for %v: %v", attackFor, counts)
	if len(counts) != 1 || counts[http.StatusMethodNotAllowed] == 0 {
		t.Errorf("answers to the POST flood %v; want only 405", counts)
	}
	c.assertAllSucceeded(t)
	peakRSS(t, p, 150<<20)
}

// TestClientErrorsDoNotFloodTheLog: a scan of 404s, 400s and 405s on the
// page and REST ports, at the default log level, writes nothing.
func TestClientErrorsDoNotFloodTheLog(t *testing.T) {
	p := startServe(t, "--log-level", "info")
	hc := clientlimittest.Client(t, "127.0.0.2")
	var requests atomic.Int64
	paths := []string{"/nope-%d", "/static/../%d", "/?items=-%d", "/live/events?length=x%d"}
	rest := []string{"/v1/nope-%d", "/v1/items?length=-%d", "/v1/hello?bogus=%d"}
	counts := flood(8, func() (int, error) {
		n := requests.Add(1)
		var target, method string
		if n%2 == 0 {
			target, method = p.page+fmt.Sprintf(paths[n/2%int64(len(paths))], n), "GET"
		} else {
			target, method = p.rest+fmt.Sprintf(rest[n/2%int64(len(rest))], n), "GET"
		}
		if n%5 == 0 {
			method = "DELETE"
		}
		code, _, _, err := send(hc, method, target, "")
		return code, err
	})
	// The log is buffered; the process writes what is left as it exits,
	// so after the exit every line the scan caused is there.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("serve still runs 30s after SIGTERM")
	}
	var wrote strings.Builder
	for line := range strings.Lines(p.stderr.String()) {
		if strings.Contains(line, "127.0.0.2") || strings.Contains(line, "status=4") {
			wrote.WriteString(line)
		}
	}
	t.Logf("a scan of %d requests (%v) wrote %d bytes of log", requests.Load(), counts, wrote.Len())
	for code := range counts {
		if (code < 400 || code >= 500) && code != http.StatusTemporaryRedirect {
			t.Errorf("the scan got status %d (%v); want only 4xx, and 307 for an unclean path", code, counts)
		}
	}
	if wrote.Len() > 0 {
		t.Errorf("the scan wrote %d bytes of log at info, want none:\n%.2000s", wrote.Len(), wrote.String())
	}
}

// TestSlowLiveReadersShareTheSlots: 200 live streams read at 200 B/s from
// 50 addresses, twice the 100 slots, each opened again as soon as it is
// refused or ends, hold what the fair shares give them; 40 viewers at
// addresses of their own, 3 short live streams each in turn, are served at
// least 90% of the time meanwhile. Until their socket buffers are full the
// server writes the attackers' streams as fast as it can, which can
// saturate two cores: the canary must recover within a second of the end.
func TestSlowLiveReadersShareTheSlots(t *testing.T) {
	p := startServe(t, "--log-level", "info", "--max-live-streams", "100")
	c := startCanary(t, p)
	a := startAttack(t, 200, 50, p.page+"/live/events?length=100000", 100*time.Millisecond)
	a.holdEverySlot(t, 100)
	served, total, first := honestly(t, 40, 3, func(hc *http.Client) error { return liveOK(hc, p.page) })
	a.stop()
	t.Logf("attack: %s; honest viewers: %d of %d live streams served (first failure: %v)", a, served, total, first)
	if served*10 < total*9 {
		t.Errorf("honest viewers served %d of %d live streams, under 90%% (first failure: %v)", served, total, first)
	}
	c.assertRecovered(t, time.Now(), time.Second)
	// What the held streams keep in the process is mostly what the backend
	// sent their gRPC streams and the frontend has not yet written.
	peakRSS(t, p, 300<<20)
}

// liveOK reads a whole short live stream, to its done event.
func liveOK(hc *http.Client, page string) error {
	code, _, body, err := send(hc, "GET", page+"/live/events?length=100", "")
	if err != nil {
		return err
	}
	if code != http.StatusOK || !strings.Contains(body, "event: done\ndata: 100\n") {
		return fmt.Errorf("live stream: %d %.200q", code, body)
	}
	return nil
}

// TestRESTStreamHogsShareTheSlots: 256 getStream(10,000,000) that are
// never read, from 50 addresses, twice the 128 slots, each opened again as
// soon as it is refused, hold what the fair shares give them; 50 readers at
// addresses of their own, 2 streams of 1000 items each in turn, are served
// at least 90% of the time meanwhile. Until the socket buffers of the held
// streams are full the server writes them as fast as it can, which
// saturates two cores: the canary must recover within a second of the end.
func TestRESTStreamHogsShareTheSlots(t *testing.T) {
	p := startServe(t, "--log-level", "info")
	c := startCanary(t, p)
	a := startAttack(t, 256, 50, p.rest+"/v1/stream?length=10000000", 0)
	a.holdEverySlot(t, 128)
	served, total, first := honestly(t, 50, 2, func(hc *http.Client) error {
		code, _, body, err := send(hc, "GET", p.rest+"/v1/stream?length=1000", "")
		if err == nil && (code != http.StatusOK || strings.Count(body, "\n") != 1000) {
			err = fmt.Errorf("%d with %d lines, want 200 with 1000", code, strings.Count(body, "\n"))
		}
		return err
	})
	a.stop()
	t.Logf("attack: %s; honest readers: %d of %d streams served (first failure: %v)", a, served, total, first)
	if served*10 < total*9 {
		t.Errorf("honest readers served %d of %d streams, under 90%% (first failure: %v)", served, total, first)
	}
	c.assertRecovered(t, time.Now(), time.Second)
	peakRSS(t, p, 300<<20)
}

// attack is streams held open against a server from many addresses.
type attack struct {
	accepted, refused atomic.Int64
	done              chan struct{}
	wg                sync.WaitGroup
}

// startAttack keeps n streams of rawURL open from the addresses
// 127.0.3.1 to 127.0.3.addrs, each reading 20 bytes every readEvery (none
// at all when 0). A stream that is refused, or that the server ends, is
// opened again half a second later, so that every slot that frees is
// contested.
func startAttack(t *testing.T, n, addrs int, rawURL string, readEvery time.Duration) *attack {
	a := &attack{done: make(chan struct{})}
	for i := range n {
		ip := fmt.Sprintf("127.0.3.%d", 1+i%addrs)
		a.wg.Go(func() {
			for {
				code, err := holdHTTPStream(ip, rawURL, readEvery, a.done, func(code int) {
					if code == http.StatusOK {
						a.accepted.Add(1)
					} else {
						a.refused.Add(1)
					}
				})
				if err != nil && !errors.Is(err, io.EOF) && code == 0 {
					t.Logf("attacker %s: %v", ip, err)
				}
				select {
				case <-a.done:
					return
				case <-time.After(500 * time.Millisecond):
				}
			}
		})
	}
	t.Cleanup(a.stop)
	return a
}

// holdEverySlot waits until the attack has been given slots at least
// slots times: it holds them all, or has been through them.
func (a *attack) holdEverySlot(t *testing.T, slots int) {
	t.Helper()
	testkit.Eventually(t, time.Minute, func() error {
		return testkit.Failf(a.accepted.Load() >= int64(slots), "the attack got %d streams, want %d", a.accepted.Load(), slots)
	})
}

func (a *attack) stop() {
	select {
	case <-a.done:
	default:
		close(a.done)
	}
	a.wg.Wait()
}

func (a *attack) String() string {
	return fmt.Sprintf("%d streams accepted, %d refused", a.accepted.Load(), a.refused.Load())
}

// holdHTTPStream opens rawURL's stream from ip, reports its status code, and,
// when it is 200, reads 20 bytes every readEvery (nothing when 0) until
// stop is closed or the stream ends. The server's end of a stream it cut may
// still have megabytes queued in the kernel for a slow reader, so such an
// end is seen late here, if at all.
func holdHTTPStream(ip, rawURL string, readEvery time.Duration, stop <-chan struct{}, opened func(code int)) (int, error) {
	codes := make(chan int, 1)
	conn, r, err := openRaw(ip, rawURL, codes)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	code := <-codes
	opened(code)
	if code != http.StatusOK {
		return code, nil
	}
	if readEvery == 0 {
		<-stop
		return code, nil
	}
	buf := make([]byte, 20)
	tick := time.NewTicker(readEvery)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return code, nil
		case <-tick.C:
		}
		if _, err := r.Read(buf); err != nil {
			return code, err
		}
	}
}

// honestly has clients at addresses of their own (127.0.4.1 on) make calls
// calls each, in turn, and counts those that succeeded.
func honestly(t *testing.T, clients, calls int, call func(*http.Client) error) (served, total int, first error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range clients {
		hc := clientlimittest.Client(t, fmt.Sprintf("127.0.4.%d", 1+i))
		wg.Go(func() {
			for range calls {
				err := call(hc)
				mu.Lock()
				total++
				if err == nil {
					served++
				} else if first == nil {
					first = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return served, total, first
}

// openRaw sends a GET of rawURL on a connection from ip, reads the status
// line, and sends its code to codes; the caller closes the connection.
func openRaw(ip, rawURL string, codes chan<- int) (net.Conn, *bufio.Reader, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, nil, err
	}
	conn, err := clientlimittest.Dialer(ip).Dial("tcp", u.Host)
	if err != nil {
		return nil, nil, err
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u.RequestURI(), u.Host)
	// A small buffer: the reader must not take more than it means to.
	r := bufio.NewReaderSize(conn, 16)
	var code int
	if _, err := fmt.Fscanf(r, "HTTP/1.1 %d", &code); err != nil {
		conn.Close()
		return nil, nil, err
	}
	codes <- code
	return conn, r, nil
}

// TestMetricsFloodLeavesRoomForScrapes: 50 clients from one address
// scraping /metrics as fast as they can, on the page's port and on the
// backend's metrics port, take what scrape slots are free; a scraper at
// another address, every 100 ms, is never refused: holding fewer, it takes
// a slot of the flood's.
func TestMetricsFloodLeavesRoomForScrapes(t *testing.T) {
	p := startServe(t)
	c := startCanary(t, p)
	for _, target := range []string{p.page + "/metrics", p.metrics + "/metrics"} {
		attacker := clientlimittest.Client(t, "127.0.0.2")
		done := make(chan map[int]int, 1)
		go func() {
			done <- flood(50, func() (int, error) {
				code, _, _, err := send(attacker, "GET", target, "")
				return code, err
			})
		}()
		scraper := clientlimittest.Client(t, "127.0.0.1")
		var refused []int
		for range 20 {
			code, _, body, err := send(scraper, "GET", target, "")
			if err != nil || code != http.StatusOK || !strings.Contains(body, "go_goroutines") {
				refused = append(refused, code)
			}
			time.Sleep(canaryEvery) // the scraper's own pace, not a wait for the server
		}
		flooded := <-done
		t.Logf("%s: flood %v; %d of 20 real scrapes refused", target, flooded, len(refused))
		if len(refused) > 0 {
			t.Errorf("%s: real scrapes refused during the flood: %v", target, refused)
		}
	}
	c.assertAllSucceeded(t)
}

// TestCompareRunOnlyForThisSite: a POST to /compare/run from another site,
// or for a host name the server does not serve (DNS rebinding: Host and
// Origin both evil.example), is a 403 and starts no bench.
func TestCompareRunOnlyForThisSite(t *testing.T) {
	p := startServe(t)
	u, err := url.Parse(p.page)
	if err != nil {
		t.Fatal(err)
	}
	evil := "evil.example:" + u.Port()
	hc := clientlimittest.Client(t, "127.0.0.2")
	for _, h := range [][]string{
		{"Host", evil, "Origin", "http://" + evil},
		{"Host", evil, "Origin", "http://" + evil, "Sec-Fetch-Site", "same-origin"},
		{"Host", evil},
		{"Origin", "http://evil.example"},
		{"Sec-Fetch-Site", "cross-site"},
	} {
		code, _, body, err := send(hc, "POST", p.page+"/compare/run", "", append(h, "Accept", "application/json")...)
		if err != nil || code != http.StatusForbidden {
			t.Errorf("POST /compare/run with %q: %d %.200q %v; want 403", h, code, body, err)
		}
	}
	_, _, status, err := send(hc, "GET", p.page+"/compare/status", "")
	if err != nil || !strings.Contains(status, `"running":false`) || strings.Contains(status, "finished") {
		t.Errorf("compare status after the refused runs: %s %v; want none run", status, err)
	}
}
