package clientlimit

import (
	"context"
	"net"
)

// SendBuffer is the kernel send buffer each connection of the HTTP faces
// gets (Linux doubles it, for its own bookkeeping, to 512 KiB). Left to
// Linux, a buffer grows to tcp_wmem's maximum, 4 MiB, for a client that
// reads nothing: each stream a client stalls first takes that much of the
// kernel's memory, and of the server's CPU to fill it, before a write
// blocks and MinRate can cut it. 512 KiB still carries 25 MB/s per
// connection at 20 ms of round trip.
const SendBuffer = 256 << 10

// BoundSendBuffer is an http.Server's ConnContext: it sets SendBuffer on
// each connection it accepts, below TLS where there is TLS.
func BoundSendBuffer(ctx context.Context, c net.Conn) context.Context {
	if tlsConn, ok := c.(interface{ NetConn() net.Conn }); ok {
		c = tlsConn.NetConn()
	}
	if tcp, ok := c.(*net.TCPConn); ok {
		// A connection that refuses it keeps Linux's own sizing: worse for
		// a stalled stream, no worse for anyone else.
		_ = tcp.SetWriteBuffer(SendBuffer)
	}
	return ctx
}
