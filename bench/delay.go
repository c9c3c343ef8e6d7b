package bench

import (
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// delayProxy forwards TCP connections from its listener to an upstream
// address, holding every byte back by a one-way delay in each direction.
// The kernel has no netem here, so latency is added in user space; the
// bandwidth is shaped in the kernel, on the veth pair the upstream side
// crosses (see netns.go).
//
// Why it is faithful enough:
//   - Per direction: each direction of each connection has its own FIFO and
//     writer, so a reply is not held up behind a request and both ways get
//     the delay, as on a wire.
//   - Ordering: one queue per direction, written in the order read, so bytes
//     arrive in order as TCP delivers them.
//   - Time: a chunk is written when its own arrival time plus the delay has
//     passed, not after a fixed sleep per chunk, so a stream of chunks is
//     delayed once, not once per chunk (pipelined, as a long wire holds many
//     packets in flight).
//   - Copies: a chunk is read into a pooled buffer and written from it: the
//     one copy in and out of user space that any forwarding hop makes.
//   - Backpressure: a direction holds at most window bytes in flight; past
//     that the reader stops reading, so a fast sender is slowed by TCP as it
//     would be by a full pipe, instead of piling up memory.
//
// What it does not model: the two TCP connections each side of the proxy see
// a loopback round trip, not the link's, so TCP's slow start and congestion
// window do not feel the delay. A new connection pays the delay through its
// first bytes (request and reply) but not TCP's own handshake; the dialer
// adds that one round trip (see linkDialer).
type delayProxy struct {
	lis      net.Listener
	upstream string
	dial     dialFunc
	oneWay   atomic.Int64 // nanoseconds
	window   int
	// waited is the delay the proxy has added, in all directions and
	// chunks, in nanoseconds: what a test can check whatever the
	// machine's load, where wall-clock time cannot be.
	waited atomic.Int64

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	done  chan struct{}
	wg    sync.WaitGroup
}

// proxyChunk bounds one read, and so the granularity of the delay queue.
const proxyChunk = 256 << 10

var chunkPool = sync.Pool{New: func() any { b := make([]byte, proxyChunk); return &b }}

func newDelayProxy(lis net.Listener, upstream string, dial dialFunc, window int) *delayProxy {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	return &delayProxy{lis: lis, upstream: upstream, dial: dial, window: max(window, 4*proxyChunk),
		conns: map[net.Conn]struct{}{}, done: make(chan struct{})}
}

// setOneWay sets the delay of each direction, for new and open connections.
func (p *delayProxy) setOneWay(d time.Duration) { p.oneWay.Store(int64(d)) }

// serve accepts until close.
func (p *delayProxy) serve() error {
	for {
		down, err := p.lis.Accept()
		if err != nil {
			select {
			case <-p.done:
				return nil
			default:
				return err
			}
		}
		p.wg.Go(func() { p.forward(down) })
	}
}

func (p *delayProxy) track(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.done:
		c.Close()
		return false
	default:
	}
	p.conns[c] = struct{}{}
	return true
}

func (p *delayProxy) forward(down net.Conn) {
	if !p.track(down) {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	up, err := p.dial(ctx, "tcp", p.upstream)
	cancel()
	if err != nil {
		down.Close()
		return
	}
	if !p.track(up) {
		down.Close()
		return
	}
	var wg sync.WaitGroup
	wg.Go(func() { p.pump(down, up) })
	wg.Go(func() { p.pump(up, down) })
	wg.Wait()
	p.mu.Lock()
	delete(p.conns, down)
	delete(p.conns, up)
	p.mu.Unlock()
	down.Close()
	up.Close()
}

type chunk struct {
	buf *[]byte
	n   int
	at  time.Time // when it was read: it leaves at at + oneWay
	err error     // the read's error, after the bytes
}

// pump copies src to dst, each chunk leaving its delay after it arrived.
// preciseSleep waits d, or until done closes (it then says false). Go's
// timers sleep in the network poller, whose epoll wait counts whole
// milliseconds: a 100µs wait on an idle process takes a millisecond. Short
// waits therefore block their thread in nanosleep, whose high-resolution
// timer is good to the process's timer slack (set to 1µs in the proxy).
func preciseSleep(done <-chan struct{}, timer *time.Timer, d time.Duration) bool {
	if d < preciseBelow {
		ts := unix.NsecToTimespec(int64(d))
		for unix.Nanosleep(&ts, &ts) == unix.EINTR {
		}
		return true
	}
	timer.Reset(d)
	select {
	case <-timer.C:
		return true
	case <-done:
		return false
	}
}

// preciseBelow is the longest wait that preciseSleep spends in nanosleep.
const preciseBelow = 5 * time.Millisecond

func (p *delayProxy) pump(src, dst net.Conn) {
	queue := make(chan chunk, p.window/proxyChunk)
	go func() {
		defer close(queue)
		for {
			buf := chunkPool.Get().(*[]byte)
			n, err := src.Read(*buf)
			queue <- chunk{buf: buf, n: n, at: time.Now(), err: err}
			if err != nil {
				return
			}
		}
	}()
	timer := time.NewTimer(0)
	defer timer.Stop()
	failed := false
	for c := range queue {
		if !failed {
			failed = p.deliver(c, dst, timer)
		}
		chunkPool.Put(c.buf)
	}
}

// deliver waits until c is due and writes it; it says whether dst is done.
func (p *delayProxy) deliver(c chunk, dst net.Conn, timer *time.Timer) bool {
	if wait := time.Until(c.at.Add(time.Duration(p.oneWay.Load()))); wait > 0 {
		p.waited.Add(int64(wait))
		if !preciseSleep(p.done, timer, wait) {
			return true
		}
	}
	if c.n > 0 {
		if _, err := dst.Write((*c.buf)[:c.n]); err != nil {
			dst.Close()
			return true
		}
	}
	if c.err != nil {
		// The sender closed its side (EOF): pass the half-close on; any
		// other error ends the connection.
		if tc, ok := dst.(*net.TCPConn); ok && errors.Is(c.err, io.EOF) {
			tc.CloseWrite()
		} else {
			dst.Close()
		}
		return true
	}
	return false
}

// close stops accepting and cuts every connection.
func (p *delayProxy) close() error {
	p.mu.Lock()
	close(p.done)
	for c := range p.conns {
		c.Close()
	}
	p.mu.Unlock()
	err := p.lis.Close()
	p.wg.Wait()
	return err
}
