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
// frontend's long-lived connection to its backend). A newcomer that finds
// nothing to evict waits a moment (Options.MaxWait) for a connection to
// fall idle or close; only then is it refused: closed, so that it fails
// fast instead of waiting in the kernel's backlog.
//
// A client is its address as internal/clientlimit names it: an IPv4
// address, or the /64 of an IPv6 one.
package connlimit

import (
	"errors"
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
	// SilentAfter is how long a connection may take to make its first
	// progress before a newcomer may evict it (default IdleAfter/4): an
	// honest client sends its preface or request within a round trip or
	// two of connecting.
	SilentAfter time.Duration
	// ReportedProgress says that only Conn.Progress counts as progress, for
	// a protocol whose pings would otherwise keep an idle connection alive
	// (gRPC); otherwise every byte read or written counts (HTTP/1).
	ReportedProgress bool
	// Port names the listener in its metrics ("grpc", "page", ...).
	Port string
	// Metrics gets the counters of evictions and refusals; nil: none.
	Metrics *prometheus.Registry
	// MaxWait is how long a newcomer that finds nothing to evict may wait
	// for a connection to fall idle or close before it is refused
	// (default twice IdleAfter): connections that were all active at
	// once are all idle again IdleAfter after the last of them.
	MaxWait time.Duration
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

	// The listener's own accept loop hands admitted connections to Accept
	// (ready), and so do the newcomers waiting for room, at most
	// maxWaiting of them at once (waiting).
	startOnce sync.Once
	ready     chan net.Conn
	errs      chan error
	done      chan struct{} // closed by Close
	closeOnce sync.Once
	queue     chan waiter   // newcomers waiting for room, first come first served
	queued    atomic.Int32  // in queue, or at its head being served
	failed    chan struct{} // closed when the accept loop ends for good
	err       error         // why it ended; read after failed is closed

	evicted, refused prometheus.Counter
}

// MaxWaiting bounds the newcomers waiting for room at once at a port of
// the given cap, and so the descriptors a full port holds beyond its cap.
func MaxWaiting(capacity int) int { return max(8, capacity/4) }

// waiter is a newcomer waiting for room until its deadline.
type waiter struct {
	conn     *Conn
	deadline time.Time
}

// New returns lis capped as opts say; a Max below 1 means no cap, but
// connections are still tracked for Lookup.
func New(lis net.Listener, opts Options) *Listener {
	if opts.IdleAfter <= 0 {
		opts.IdleAfter = DefaultIdleAfter
	}
	if opts.SilentAfter <= 0 {
		opts.SilentAfter = opts.IdleAfter / 4
	}
	if opts.MaxWait <= 0 {
		opts.MaxWait = 2 * opts.IdleAfter
	}
	l := &Listener{Listener: lis, opts: opts, start: time.Now(), byClient: map[netip.Prefix]map[*Conn]struct{}{},
		ready: make(chan net.Conn), errs: make(chan error), done: make(chan struct{}), failed: make(chan struct{}),
		queue: make(chan waiter, MaxWaiting(opts.Max))}
	l.evicted = prometheus.NewCounter(prometheus.CounterOpts{
		Name:        "grpcplay_connections_evicted_total",
		Help:        "Connections closed, at the port's cap, to make room for a new one: each had made no progress for a while.",
		ConstLabels: prometheus.Labels{"port": opts.Port},
	})
	l.refused = prometheus.NewCounter(prometheus.CounterOpts{
		Name:        "grpcplay_connections_refused_total",
		Help:        "New connections closed because the port was at its cap and no connection could be evicted within the wait.",
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
// one that makes no progress. A newcomer that finds nothing to evict waits
// up to MaxWait for room, and is closed if none comes.
func (l *Listener) Accept() (net.Conn, error) {
	l.startOnce.Do(func() {
		go l.acceptLoop()
		go l.serveQueue()
	})
	select {
	case c := <-l.ready:
		return c, nil
	case err := <-l.errs:
		return nil, err
	case <-l.failed:
		return nil, l.err
	}
}

// Close stops accepting; newcomers still waiting for room are closed.
func (l *Listener) Close() error {
	l.closeOnce.Do(func() { close(l.done) })
	return l.Listener.Close()
}

func (l *Listener) acceptLoop() {
	for {
		nc, err := l.Listener.Accept()
		if err != nil {
			var temporary interface{ Temporary() bool }
			if errors.As(err, &temporary) && temporary.Temporary() {
				// The server backs off and calls Accept again (EMFILE).
				select {
				case l.errs <- err:
					continue
				case <-l.done:
				}
			}
			l.err = err
			close(l.failed)
			return
		}
		c := &Conn{Conn: nc, l: l, client: clientlimit.Client(nc.RemoteAddr().String()), addr: nc.RemoteAddr()}
		c.lastProgress.Store(l.now())
		// A newcomer may not jump the queue of those already waiting.
		if l.queued.Load() == 0 && l.try(c) {
			l.deliver(c)
			continue
		}
		l.queued.Add(1)
		select {
		case l.queue <- waiter{c, time.Now().Add(l.opts.MaxWait)}:
		default:
			l.queued.Add(-1)
			l.refuse(c)
		}
	}
}

// serveQueue admits the waiting newcomers in the order they came, each as
// soon as there is room, or refuses it at its deadline.
func (l *Listener) serveQueue() {
	for {
		select {
		case <-l.done:
			for {
				select {
				case w := <-l.queue:
					_ = w.conn.Conn.Close()
				default:
					return
				}
			}
		case w := <-l.queue:
			if l.wait(w) {
				l.deliver(w.conn)
			}
			l.queued.Add(-1)
		}
	}
}

// try admits c if there is room or a victim to make it, and closes the
// victim.
func (l *Listener) try(c *Conn) bool {
	victim, ok := l.admit(c)
	if victim != nil {
		victim.evicted.Store(true)
		_ = victim.Conn.Close()
		l.evicted.Inc()
	}
	return ok
}

// wait tries to admit w's connection until its deadline, every 20 ms:
// often enough to take a slot soon after it frees, cheap with one waiter
// served at a time.
func (l *Listener) wait(w waiter) bool {
	c := w.conn
	for {
		if l.try(c) {
			return true
		}
		next := min(20*time.Millisecond, time.Until(w.deadline))
		if next <= 0 {
			l.refuse(c)
			return false
		}
		t := time.NewTimer(next)
		select {
		case <-l.done:
			t.Stop()
			_ = c.Conn.Close()
			return false
		case <-t.C:
		}
	}
}

func (l *Listener) refuse(c *Conn) {
	_ = c.Conn.Close()
	l.refused.Inc()
}

// deliver hands an admitted c to Accept, or closes it if the listener has
// closed meanwhile.
func (l *Listener) deliver(c *Conn) {
	l.byAddr.Store(c.addr, c)
	select {
	case l.ready <- c:
	case <-l.done:
		_ = c.Close()
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
//     first request) SilentAfter after it opened: the oldest,
//     whatever its address, so that a flood of such connections from
//     many addresses is turned over first in, first out;
//  3. a busy connection of the address holding the most, when that address
//     holds more than an eighth of the cap and at least two more than
//     client does (max-min fairness: a client may not grow at the expense
//     of a smaller one), the least recently active; a connection held by a
//     call in flight (Conn.Hold) is never taken. The eighth spares the few
//     busy connections of a host running several honest clients (a
//     frontend, a probe, a tool): only a greedy address pays.
func (l *Listener) victim(client netip.Prefix) *Conn {
	now := l.now()
	cutoff := now - int64(l.opts.IdleAfter)
	silentCutoff := now - int64(l.opts.SilentAfter)
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
				if seen <= silentCutoff {
					fresh.consider(c, 0, seen)
				}
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
	case busy.conn != nil && busy.conn.client != client && busy.held > l.opts.Max/8 && busy.held >= len(l.byClient[client])+2:
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
// however long it takes (a unary call waiting on its handler); each Hold
// is ended by one Release.
func (c *Conn) Hold() {
	c.busy.Add(1)
	c.Progress()
}

// Release ends a Hold.
func (c *Conn) Release() {
	c.Progress()
	c.busy.Add(-1)
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
