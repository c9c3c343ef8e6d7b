package connlimit_test

import (
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grpcplay/grpcplay/internal/connlimit"
)

// server accepts on a capped loopback listener and hands over each
// connection it admits.
type server struct {
	lis      *connlimit.Listener
	accepted chan net.Conn
	reg      *prometheus.Registry
}

func newServer(t *testing.T, opts connlimit.Options) *server {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{accepted: make(chan net.Conn, 16), reg: prometheus.NewRegistry()}
	opts.Metrics, opts.Port = s.reg, "test"
	if opts.MaxWait == 0 {
		// Refusals come at once: the tests wait on events, not on time.
		opts.MaxWait = time.Nanosecond
	}
	s.lis = connlimit.New(raw, opts)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := s.lis.Accept()
			if err != nil {
				return
			}
			s.accepted <- c
		}
	}()
	t.Cleanup(func() {
		_ = s.lis.Close()
		<-done
		close(s.accepted)
		for c := range s.accepted {
			_ = c.Close()
		}
	})
	return s
}

// dial connects from source (an address of 127.0.0.0/8) and returns the
// client's end and, when admitted, the server's.
func (s *server) dial(t *testing.T, source string) net.Conn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}, Timeout: 5 * time.Second}
	c, err := d.Dial("tcp", s.lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func (s *server) next(t *testing.T) net.Conn {
	t.Helper()
	select {
	case c := <-s.accepted:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection admitted within 10s")
		return nil
	}
}

// closedByServer waits until the server closes c.
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); !errors.Is(err, io.EOF) && !isReset(err) {
		t.Fatalf("read on a connection the server should have closed: %v", err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && !op.Timeout()
}

// At the cap, a newcomer from another address evicts the least recently
// active idle connection of the address holding the most, not the oldest.
func TestFullListenerEvictsTheIdleOfTheLargestAddress(t *testing.T) {
	s := newServer(t, connlimit.Options{Max: 3, IdleAfter: time.Nanosecond})
	long := s.dial(t, "127.0.0.1")
	longSrv := s.next(t)
	a1 := s.dial(t, "127.0.0.2")
	a1Srv := s.next(t)
	a2 := s.dial(t, "127.0.0.2")
	a2Srv := s.next(t)
	// a1 was active after a2 opened: a2 is the least recently active of
	// 127.0.0.2, and the long-lived connection, the oldest, is on an
	// address holding one.
	if _, err := a1.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := a1Srv.Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	s.dial(t, "127.0.0.3")
	s.next(t)
	closedByServer(t, a2)
	if !a2Srv.(*connlimit.Conn).Evicted() || a1Srv.(*connlimit.Conn).Evicted() || longSrv.(*connlimit.Conn).Evicted() {
		t.Error("evicted the wrong connection")
	}
	_ = long
	if got := counter(t, s.reg, "grpcplay_connections_evicted_total"); got != 1 {
		t.Errorf("evictions counted %v, want 1", got)
	}
}

// A connection still to make its first progress is evicted oldest first,
// whatever its address: an honest newcomer has the port's whole turnover
// to send its first request.
func TestFullListenerEvictsTheOldestSilentConnection(t *testing.T) {
	s := newServer(t, connlimit.Options{Max: 3, IdleAfter: time.Hour, SilentAfter: time.Nanosecond})
	oldest := s.dial(t, "127.0.0.2")
	s.next(t)
	s.dial(t, "127.0.0.3")
	s.next(t)
	s.dial(t, "127.0.0.3")
	s.next(t)
	s.dial(t, "127.0.0.4")
	s.next(t)
	closedByServer(t, oldest)
}

// With nothing idle or silent, the newcomer is closed at once and counted.
func TestFullListenerRefusesWhenNothingIsIdle(t *testing.T) {
	s := newServer(t, connlimit.Options{Max: 1, IdleAfter: time.Hour})
	busy := s.dial(t, "127.0.0.2")
	if _, err := busy.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.next(t).Read(make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	closedByServer(t, s.dial(t, "127.0.0.3"))
	if got := counter(t, s.reg, "grpcplay_connections_refused_total"); got != 1 {
		t.Errorf("refusals counted %v, want 1", got)
	}
	if got := s.lis.Open(); got != 1 {
		t.Errorf("%d open, want 1", got)
	}
}

// With every connection busy, a newcomer from an address holding at least
// two fewer than the largest takes the largest's least recently active
// connection; one from the largest itself, or close to it, is refused.
func TestFullListenerGivesSmallerAddressesTheirShare(t *testing.T) {
	// A cap of 3: an eighth of it is 0, so an address holding 2 is greedy.
	s := newServer(t, connlimit.Options{Max: 3, IdleAfter: time.Hour, ReportedProgress: true})
	lru := s.dial(t, "127.0.0.2")
	s.next(t).(*connlimit.Conn).Progress()
	s.dial(t, "127.0.0.2")
	s.next(t).(*connlimit.Conn).Progress()
	s.dial(t, "127.0.0.3")
	s.next(t).(*connlimit.Conn).Progress()
	closedByServer(t, s.dial(t, "127.0.0.2"))
	closedByServer(t, s.dial(t, "127.0.0.3"))
	s.dial(t, "127.0.0.4")
	s.next(t)
	closedByServer(t, lru)
}

// A connection held by a call in flight is not evicted however long it
// has been quiet; once the call ends it may be.
func TestHeldConnectionIsNotEvicted(t *testing.T) {
	s := newServer(t, connlimit.Options{Max: 1, IdleAfter: time.Nanosecond, ReportedProgress: true})
	held := s.dial(t, "127.0.0.2")
	c := s.next(t).(*connlimit.Conn)
	c.Hold()
	closedByServer(t, s.dial(t, "127.0.0.3"))
	c.Release()
	s.dial(t, "127.0.0.3")
	s.next(t)
	closedByServer(t, held)
}

// Lookup finds an admitted connection by the address it reports.
func TestLookup(t *testing.T) {
	s := newServer(t, connlimit.Options{Max: 2})
	s.dial(t, "127.0.0.2")
	c := s.next(t)
	if got := s.lis.Lookup(c.RemoteAddr()); got != c {
		t.Errorf("Lookup = %v, want the admitted connection", got)
	}
	_ = c.Close()
	if got := s.lis.Lookup(c.RemoteAddr()); got != nil {
		t.Errorf("Lookup after Close = %v, want nil", got)
	}
}

func counter(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no %s in the registry", name)
	return 0
}

// A newcomer that finds nothing to evict waits for room: here, for a
// connection to close.
func TestNewcomerWaitsForRoom(t *testing.T) {
	s := newServer(t, connlimit.Options{Max: 1, IdleAfter: time.Hour, MaxWait: time.Hour, ReportedProgress: true})
	s.dial(t, "127.0.0.2")
	busy := s.next(t)
	busy.(*connlimit.Conn).Progress()
	waiting := s.dial(t, "127.0.0.3")
	_ = busy.Close()
	admitted := s.next(t)
	if admitted.RemoteAddr().String() != waiting.LocalAddr().String() {
		t.Errorf("admitted %v, want the waiting %v", admitted.RemoteAddr(), waiting.LocalAddr())
	}
}
