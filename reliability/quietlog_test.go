package reliability_test

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/clientlimit/clientlimittest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// TestHostileClientsLogNothingAtWarn floods every HTTP port with what a
// client can do to make a server complain, at `--log-level warn`: scrapes
// reset before or while their reply is sent, on both metrics endpoints;
// page replies and REST streams never read, held until the server gives
// up on them. None of it is the operator's to act on, so none of it may
// write a line.
func TestHostileClientsLogNothingAtWarn(t *testing.T) {
	const sources = 50
	p := startServe(t)
	base := p.fds(t)
	var wg sync.WaitGroup
	scrapes := 0
	for _, target := range []string{p.page + "/metrics", p.metrics + "/metrics"} {
		u, err := url.Parse(target)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 400 {
			scrapes++
			wg.Go(func() { resetScrape(attackSource(i, sources).String(), u, i%2 == 0) })
		}
	}
	wg.Wait()
	held := neverReadReplies(t, p, sources)
	// The server closes each connection once its write deadline or the
	// reading floor gives up on it: then it holds what it held before.
	testkit.Eventually(t, 2*time.Minute, func() error {
		n := p.fds(t)
		return testkit.Failf(n <= base+8, "the server still holds %d descriptors, from %d", n, base)
	})
	for _, c := range held {
		_ = c.Close()
	}
	// The log is buffered; the process writes what is left as it exits.
	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("serve still runs 30s after SIGTERM")
	}
	logged := p.stderr.String()
	t.Logf("%d reset scrapes, %d never-read page connections (4 pages each), 50 never-read REST streams: %d bytes of log at warn", scrapes, 200, len(logged))
	if logged != "" {
		t.Errorf("the attack wrote %d bytes of log at warn, want none:\n%.3000s", len(logged), logged)
	}
}

// neverReadReplies opens, from sources addresses, 200 connections each
// asking for four pipelined pages of about 100 KB, and 50 endless REST
// streams, and reads none of it; the caller closes the connections.
func neverReadReplies(t *testing.T, p *serveProc, sources int) []net.Conn {
	t.Helper()
	var held []net.Conn
	for i := range 200 {
		conn, err := clientlimittest.Dialer(attackSource(i, sources).String()).Dial("tcp", strings.TrimPrefix(p.page, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
		for range 4 {
			fmt.Fprintf(conn, "GET /?name=x&items=1000&stream=1000 HTTP/1.1\r\nHost: x\r\n\r\n")
		}
	}
	for i := range 50 {
		conn, err := clientlimittest.Dialer(attackSource(i, sources).String()).Dial("tcp", strings.TrimPrefix(p.rest, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
		fmt.Fprintf(conn, "GET /v1/stream?length=10000000 HTTP/1.1\r\nHost: x\r\n\r\n")
	}
	return held
}

// resetScrape sends one scrape of u from ip and resets the connection
// (SO_LINGER 0): at once, or once the reply has started.
func resetScrape(ip string, u *url.URL, waitForReply bool) {
	conn, err := clientlimittest.Dialer(ip).Dial("tcp", u.Host)
	if err != nil {
		return
	}
	fmt.Fprintf(conn, "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", u.RequestURI(), u.Host)
	if waitForReply {
		_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, _ = conn.Read(make([]byte, 1))
	}
	_ = conn.(*net.TCPConn).SetLinger(0)
	_ = conn.Close()
}
