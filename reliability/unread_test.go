package reliability_test

import (
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/testkit"
)

// TestUnreadRepliesWorstCase measures what clients that ask and never read
// make the HTTP ports hold, each port in a process of its own, for the
// worst case docs/RELIABILITY.md computes from it:
//
//   - the REST port: MaxInFlight (256) getAll(100,000) from 50 addresses,
//     each reply 3.5 MB of JSON, whose clients read the status line and
//     nothing more;
//   - the page port: 256 connections each asking for 16 pipelined pages
//     of 1,000 items and a 1,000-item stream (about 105 KB each) and
//     reading only the first status line; what one costs, times the
//     port's cap, is the port's worst case.
func TestUnreadRepliesWorstCase(t *testing.T) {
	t.Run("rest", func(t *testing.T) {
		p := startServe(t)
		base := p.status(t, "VmRSS")
		// The longest deadline a client may ask for, so that every call
		// waits for the items' budget rather than giving up.
		held := holdUnread(t, 256, p.rest, "/v1/items?length=100000", 1, "Grpc-Timeout: 5M\r\n")
		peak := p.status(t, "VmHWM")
		t.Logf("%d never-read getAll(100000): peak RSS %.0f MiB, %.1f MiB a reply over the %.0f MiB at start", held, mib(uint64(peak)), mib(uint64(peak-base))/float64(held), mib(uint64(base)))
		// 256 replies of 3.5 MB and the items of the replies being made
		// (the budget's 1,000,000, about 300 MB with their copies): 1.2 GB
		// live, and GOGC=200 lets the heap grow to three times its live
		// size before it collects.
		if limit := int64(3600) << 20; peak > limit {
			t.Errorf("peak RSS %.0f MiB, over the documented %.0f MiB", mib(uint64(peak)), mib(uint64(limit)))
		}
	})
	t.Run("page", func(t *testing.T) {
		const conns = 256
		p := startServe(t, "--http-max-conns", "1024")
		base := p.status(t, "VmRSS")
		held := holdUnread(t, conns, p.page, "/?name=x&items=1000&stream=1000", 16, "")
		// The frontend writes pages until each connection's socket buffers
		// are full (512 KiB sent, 128 KiB received: about six pages), and
		// then holds one page a connection, blocked in its write.
		var answered float64 = -1
		testkit.Eventually(t, 2*time.Minute, func() error {
			done, inFlight := p.metricSum(t, p.page, "http_requests_total"), p.metricSum(t, p.page, "http_requests_in_flight")
			settled := done == answered && done >= 5*conns && inFlight > conns
			answered = done
			return testkit.Failf(settled, "%v pages answered, %v requests in flight", done, inFlight)
		})
		peak, now := p.status(t, "VmHWM"), p.status(t, "VmRSS")
		perConn := (peak - base) / int64(held)
		t.Logf("%d connections of 16 never-read pages: %.0f pages written; peak RSS %.0f MiB, %.0f KiB a connection over the %.0f MiB at start; %.0f MiB once every connection holds its page", held, answered, mib(uint64(peak)), float64(perConn)/1024, mib(uint64(base)), mib(uint64(now)))
		// About 0.85 MB measured; the heap's garbage, which GOGC=200 lets
		// grow, moves it.
		if limit := int64(2) << 20; perConn > limit {
			t.Errorf("%d KiB a connection, over the documented %d KiB", perConn>>10, limit>>10)
		}
	})
}

// holdUnread opens conns connections to base from 50 addresses, each
// sending requests pipelined copies of path (with header, lines ending in
// CRLF), and reads the first status
// line of each: the reply has been made and is being written. It returns
// how many answered 200, the replies held; the connections stay open,
// unread, until the test ends.
func holdUnread(t *testing.T, conns int, base, path string, requests int, header string) int {
	t.Helper()
	host := strings.TrimPrefix(base, "http://")
	request := strings.Repeat(fmt.Sprintf("GET %s HTTP/1.1\r\nHost: %s\r\n%s\r\n", path, host, header), requests)
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for i := range conns {
		wg.Go(func() {
			code, err := askAndStall(t, attackSource(i, 50), host, request)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				codes[0]++
				return
			}
			codes[code]++
		})
	}
	wg.Wait()
	// A reply that missed its deadline (504: the items' budget, or the
	// page's calls, on a busy machine) holds nothing; anything else is a
	// failure.
	if codes[http.StatusOK]+codes[http.StatusGatewayTimeout] != conns || codes[http.StatusOK] == 0 {
		t.Errorf("the never-read requests got %v, want 200 (or 504) for all %d", codes, conns)
	}
	t.Logf("the never-read requests got %v", codes)
	return max(codes[http.StatusOK], 1)
}

// askAndStall sends request on a connection from ip and reads the status
// code of the first reply, 16 bytes at most, then nothing; the connection
// is closed when the test ends.
func askAndStall(t *testing.T, ip net.IP, host, request string) (int, error) {
	conn, err := (&net.Dialer{LocalAddr: &net.TCPAddr{IP: ip}}).Dial("tcp", host)
	if err != nil {
		return 0, err
	}
	t.Cleanup(func() { _ = conn.Close() })
	if _, err := conn.Write([]byte(request)); err != nil {
		return 0, err
	}
	status := make([]byte, len("HTTP/1.1 200"))
	for n := 0; n < len(status); {
		m, err := conn.Read(status[n:])
		if err != nil {
			return 0, err
		}
		n += m
	}
	var code int
	_, err = fmt.Sscanf(string(status), "HTTP/1.1 %d", &code)
	return code, err
}
