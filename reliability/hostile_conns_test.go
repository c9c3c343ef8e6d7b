package reliability_test

import (
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/connlimit"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// The descriptor limit the idle-connection attacks run under: small, so
// that a few hundred connections would exhaust it without the caps. Go
// raises the soft limit to the hard one at start; the caps are an eighth of
// it for gRPC (at most 64), the page and REST (at most 4096), 32 for
// metrics.
const (
	softNofile, hardNofile = 256, 2048
	grpcConnCap            = 64
	pageConnCap            = hardNofile / 8
)

// TestRuntimeRaisesTheDescriptorLimit shows why grpcplay does not raise
// RLIMIT_NOFILE itself: the Go runtime already does, to one below the hard
// limit (syscall's init; one below, so that it can tell a later prlimit by
// another process from its own change, go.dev/issue/46279).
func TestRuntimeRaisesTheDescriptorLimit(t *testing.T) {
	p := startServeLimited(t, [2]int{softNofile, hardNofile})
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/limits")
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "Max open files"); ok {
			f := strings.Fields(rest)
			if f[0] != strconv.Itoa(hardNofile-1) {
				t.Fatalf("soft descriptor limit %s, want one below the hard %d: %q", f[0], hardNofile, line)
			}
			return
		}
	}
	t.Fatalf("no descriptor limit in /proc/PID/limits:\n%s", b)
}

// TestHostileIdleConnections opens more idle connections to one port than
// the process has descriptors for, holds them, and checks that the process
// holds no more than the port's cap and the newcomers waiting for room,
// that the other faces keep answering, and that the attacked one answers
// fresh connections within a second once the attacker lets go. Long-lived connections, already accepted, go on
// working throughout.
func TestHostileIdleConnections(t *testing.T) {
	for _, tt := range []struct {
		face  string
		addr  func(*serveProc) string
		cap   int
		probe string
		greet bool // speak HTTP/2 first, as a gRPC client that stays idle does
	}{
		{"grpc", func(p *serveProc) string { return p.grpc }, grpcConnCap, "grpc/fresh", true},
		{"page", func(p *serveProc) string { return strings.TrimPrefix(p.page, "http://") }, pageConnCap, "page/fresh", false},
	} {
		t.Run(tt.face, func(t *testing.T) {
			p := startServeLimited(t, [2]int{softNofile, hardNofile})
			c := startCanary(t, p)
			c.waitAfter(t, time.Now(), 2)
			base := p.fds(t)
			attackers := hardNofile + 100 - base
			idle := make([]net.Conn, 0, attackers)
			for range attackers {
				conn := dialIdle(t, tt.addr(p), tt.greet)
				idle = append(idle, conn)
			}
			// base counted a canary connection or two that have closed since.
			testkit.Eventually(t, 10*time.Second, func() error {
				return testkit.Failf(p.fds(t) >= base+tt.cap-4, "the server does not hold its cap of connections")
			})
			// One probe of each kind while the port is full: a fresh one to
			// it waits in the backlog for the canary's whole timeout.
			c.waitAfter(t, time.Now(), 1)
			held := p.fds(t)
			t.Logf("%d idle connections to the %s port: %d descriptors held (from %d), cap %d", attackers, tt.face, held, base, tt.cap)
			// Newcomers waiting for room hold a descriptor each; the slack
			// covers the canary's own fresh connections.
			if waiting := connlimit.MaxWaiting(tt.cap); held > base+tt.cap+waiting+16 {
				t.Errorf("%d descriptors held, over %d + the cap %d + %d waiting", held, base, tt.cap, waiting)
			}
			for _, conn := range idle {
				_ = conn.Close()
			}
			c.assertSucceededBut(t, time.Now(), time.Second, tt.probe)
		})
	}
}

// dialIdle opens a connection and then does nothing more; with greet, it
// first sends HTTP/2's preface and SETTINGS, as an idle gRPC client does.
// The kernel completes the handshake whether or not the server accepts.
func dialIdle(t *testing.T, addr string, greet bool) net.Conn {
	t.Helper()
	if greet {
		return dialRaw(t, addr).conn
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}
