// Package connlimit caps the connections a listener holds open, and sizes
// the caps from the process's descriptor limit so that a client holding one
// port's every connection leaves descriptors for the other ports.
//
// A full listener makes room instead of refusing, as nginx's reusable
// connections and Envoy's overload manager do: a new connection evicts one
// that has made no progress for a short while (Options.IdleAfter): an idle
// keep-alive connection, one that never sent its preface or first request,
// a stream whose reader stopped, a gRPC connection whose only calls are
// health Watches. The victim is the least recently active connection of the
// address holding the most connections, never simply the oldest (that is a
// frontend's long-lived connection to its backend). Only when nothing can be
// evicted is the newcomer refused: accepted and closed at once, so that it
// fails fast instead of waiting in the kernel's backlog.
//
// A client is its address as internal/clientlimit names it: an IPv4
// address, or the /64 of an IPv6 one.
package connlimit

import (
	"math"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/grpcplay/grpcplay/internal/clientlimit"
)

// DefaultIdleAfter is how long a connection may go without progress before
// a newcomer may evict it: long enough for a client between two requests of
// one page, far shorter than any idle timeout, so that a full port frees a
// slot within it.
const DefaultIdleAfter = time.Second

// Options are a Listener's cap and how it judges progress.
type Options struct {
	// Max is the cap on open connections; < 1 means no cap.
	Max int
	// IdleAfter is how long without progress makes a connection evictable
	// (default DefaultIdleAfter).
	IdleAfter time.Duration
	// ReportedProgress says that only Conn.Progress counts as progress, for
	// a protocol whose pings would otherwise keep an idle connection alive
	// (gRPC); otherwise every byte read or written counts (HTTP/1).
	ReportedProgress bool
	// Port names the listener in its metrics ("grpc", "page", ...).
	Port string
	// Metrics gets the counters of evictions and refusals; nil: none.
	Metrics *prometheus.Registry
}

// Listener is a capped listener that evicts connections making no
// progress. Its Accept returns *Conn values.
type Listener struct {
	net.Listener
	opts  Options
	start time.Time // progress is counted in monotonic time since start

	mu       sync.Mutex
	open     int
	byClient map[netip.Prefix]map[*Conn]struct{}
	byAddr   sync.Map // net.Addr → *Conn, for Lookup

	evicted, refused prometheus.Counter
}

// New returns lis capped as opts say; a Max below 1 means no cap, but
// connections are still tracked for Lookup.
func New(lis net.Listener, opts Options) *Listener {
	if opts.IdleAfter <= 0 {
		opts.IdleAfter = DefaultIdleAfter
	}
	l := &Listener{Listener: lis, opts: opts, start: time.Now(), byClient: map[netip.Prefix]map[*Conn]struct{}{}}
	l.evicted = prometheus.NewCounter(prometheus.CounterOpts{
		Name:        "grpcplay_connections_evicted_total",
		Help:        "Connections closed, at the port's cap, to make room for a new one: each had made no progress for a while.",
		ConstLabels: prometheus.Labels{"port": opts.Port},
	})
	l.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name:        "grpcplay_connections_refused_total",
		Help:        "New connections closed at once because the port was at its cap and no connection could be evicted.",
		ConstLabels: prometheus.Labels{"port": opts.Port},
	})
	if opts.Metrics != nil {
		l.evicted = register(opts.Metrics, l.evicted)
		l.refused = register(opts.Metrics, l.refused)
	}
	return l
}

// register registers c, or returns the counter already there: a server
// restarted on the same registry keeps counting in the same series.
func register(reg *prometheus.Registry, c prometheus.Counter) prometheus.Counter {
	if err := reg.Register(c); err != nil {
		if already, ok := err.(prometheus.AlreadyRegisteredError); ok {
			if existing, ok := already.ExistingCollector.(prometheus.Counter); ok {
				return existing
			}
		}
		// Only a programming error (a clashing metric name) gets here.
		panic(err)
	}
	return c
}

// Accept returns the next connection admitted: at the cap, after evicting
// one that makes no progress; a connection that finds nothing to evict is
// closed, and Accept waits for the next.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		c := &Conn{Conn: nc, l: l, client: clientlimit.Client(nc.RemoteAddr().String()), addr: nc.RemoteAddr()}
		c.lastProgress.Store(l.now())
		victim, ok := l.admit(c)
		if victim != nil {
			victim.evicted.Store(true)
			_ = victim.Conn.Close()
			l.evicted.Inc()
		}
		if !ok {
			_ = nc.Close()
			l.refused.Inc()
			continue
		}
		l.byAddr.Store(c.addr, c)
		return c, nil
	}
}

// admit adds c to the open connections, making room if the listener is
// full. victim, when not nil, has been taken out and must be closed.
func (l *Listener) admit(c *Conn) (victim *Conn, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.opts.Max > 0 && l.open >= l.opts.Max {
		victim = l.victim(c.client)
		if victim == nil {
			return nil, false
		}
		l.remove(victim)
	}
	l.open++
	set := l.byClient[c.client]
	if set == nil {
		set = map[*Conn]struct{}{}
		l.byClient[c.client] = set
	}
	set[c] = struct{}{}
	return victim, true
}

// victim picks the connection a newcomer from client may evict, or nil
// when none may be. In order:
//
//  1. a connection without progress for IdleAfter: the least recently
//     active of the address holding the most connections;
//  2. a connection still to make its first progress (its preface, its
//     first request): the oldest, whatever its address, so that an honest
//     newcomer has as long as the port's whole turnover to prove itself
//     however many addresses a flood of such connections comes from;
//  3. a busy connection of the address holding the most, when that address
//     holds at least two more than client does (max-min fairness: a client
//     may not grow at the expense of a smaller one), the least recently
//     active; a connection held by a call in flight (Conn.Hold) is never
//     taken.
func (l *Listener) victim(client netip.Prefix) *Conn {
	cutoff := l.now() - int64(l.opts.IdleAfter)
	var idle, fresh, busy candidate
	for _, set := range l.byClient {
		held := len(set)
		for c := range set {
			if c.busy.Load() > 0 {
				continue
			}
			seen := c.lastProgress.Load()
			switch {
			case seen <= cutoff:
				idle.consider(c, held, seen)
			case !c.progressed.Load():
				fresh.consider(c, 0, seen)
			default:
				busy.consider(c, held, seen)
			}
		}
	}
	switch {
	case idle.conn != nil:
		return idle.conn
	case fresh.conn != nil:
		return fresh.conn
	case busy.conn != nil && busy.conn.client != client && busy.held >= len(l.byClient[client])+2:
		return busy.conn
	}
	return nil
}

// candidate is the best victim of one kind so far: of the address holding
// the most, the least recently active.
type candidate struct {
	conn *Conn
	held int
	seen int64
}

func (b *candidate) consider(c *Conn, held int, seen int64) {
	if b.conn == nil || held > b.held || held == b.held && seen < b.seen {
		*b = candidate{c, held, seen}
	}
}

// remove takes c out of the open connections; the caller holds mu.
func (l *Listener) remove(c *Conn) {
	set := l.byClient[c.client]
	if _, ok := set[c]; !ok {
		return
	}
	delete(set, c)
	if len(set) == 0 {
		delete(l.byClient, c.client)
	}
	l.open--
}

func (l *Listener) now() int64 { return int64(time.Since(l.start)) }

// Lookup finds the open connection whose remote address is addr: the same
// net.Addr value the connection reports, as grpc-go's peer and stats carry
// it. It is nil for a connection this listener does not hold.
func (l *Listener) Lookup(addr net.Addr) *Conn {
	c, _ := l.byAddr.Load(addr)
	conn, _ := c.(*Conn)
	return conn
}

// Open is the number of connections held now.
func (l *Listener) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open
}

// Conn is one admitted connection.
type Conn struct {
	net.Conn
	l            *Listener
	client       netip.Prefix
	addr         net.Addr
	lastProgress atomic.Int64 // Listener.now() of the last progress, or of the accept
	progressed   atomic.Bool  // any progress since the accept
	busy         atomic.Int32 // calls in flight that protect the connection
	evicted      atomic.Bool
	closeOnce    sync.Once
}

// Progress records that the connection is doing useful work now.
func (c *Conn) Progress() {
	c.lastProgress.Store(c.l.now())
	if !c.progressed.Load() {
		c.progressed.Store(true)
	}
}

// Hold marks a call in flight that keeps the connection from eviction
// however long it takes (a unary call waiting on its handler); the func it
// returns ends the hold.
func (c *Conn) Hold() (release func()) {
	c.busy.Add(1)
	c.Progress()
	return sync.OnceFunc(func() {
		c.Progress()
		c.busy.Add(-1)
	})
}

// Evicted says whether the listener closed the connection to make room.
func (c *Conn) Evicted() bool { return c.evicted.Load() }

// NetConn is the connection underneath, as crypto/tls names it, so that
// code setting socket options finds the *net.TCPConn.
func (c *Conn) NetConn() net.Conn { return c.Conn }

func (c *Conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 && !c.l.opts.ReportedProgress {
		c.Progress()
	}
	return n, err
}

func (c *Conn) Write(b []byte) (int, error) {
	n, err := c.Conn.Write(b)
	if n > 0 && !c.l.opts.ReportedProgress {
		c.Progress()
	}
	return n, err
}

func (c *Conn) Close() error {
	c.closeOnce.Do(func() {
		c.l.byAddr.CompareAndDelete(c.addr, c)
		c.l.mu.Lock()
		c.l.remove(c)
		c.l.mu.Unlock()
	})
	return c.Conn.Close()
}

// Share is the cap for a port that may take one part in parts of the
// process's descriptors, but never more than ceiling (which bounds the
// memory idle connections cost, about 20 KB each). parts is larger than the
// number of ports, so that some descriptors are always left for the
// process's own needs: its connections to the backend, log files, DNS.
//
// The Go runtime (1.19 and later) raises the soft RLIMIT_NOFILE to the hard
// limit at start, so the soft limit read here is already the largest the
// process can have.
func Share(parts, ceiling int) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > math.MaxInt32 {
		return ceiling
	}
	return max(1, min(ceiling, int(lim.Cur)/parts))
}
