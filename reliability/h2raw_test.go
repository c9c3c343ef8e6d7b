package reliability_test

import (
	"bytes"
	wire "encoding/binary"
	"net"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// rawConn is an HTTP/2 connection to the gRPC port written frame by frame,
// for what grpc-go's client will not do: headers repeated by HPACK index,
// streams reset as soon as they open, windows never updated.
type rawConn struct {
	conn     net.Conn
	mu       sync.Mutex // guards fr's writes, enc and hbuf
	fr       *http2.Framer
	enc      *hpack.Encoder
	hbuf     bytes.Buffer
	nextID   uint32
	closed   chan struct{} // closed when the connection ends
	goAway   chan struct{} // closed at the server's first GOAWAY
	resets   chan uint32   // streams the server reset
	trailers chan trailer  // streams that ended with the server's trailers
}

// trailer is how the server ended a stream: its grpc-status.
type trailer struct {
	stream uint32
	status string
}

// dialRaw opens a connection and exchanges SETTINGS. The client's windows
// stay at the 65,535 bytes of the protocol's default and are never updated,
// so whatever the server sends beyond them waits in the server.
func dialRaw(t *testing.T, addr string) *rawConn {
	t.Helper()
	return dialRawFrom(t, addr, nil)
}

// dialRawFrom is dialRaw from source, an address of 127.0.0.0/8 (nil: the
// kernel's choice).
func dialRawFrom(t *testing.T, addr string, source net.IP) *rawConn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second}
	if source != nil {
		d.LocalAddr = &net.TCPAddr{IP: source}
	}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	c := &rawConn{conn: conn, nextID: 1, closed: make(chan struct{}), goAway: make(chan struct{}),
		resets: make(chan uint32, 1<<12), trailers: make(chan trailer, 1<<12)}
	c.fr = http2.NewFramer(conn, conn)
	c.fr.ReadMetaHeaders = hpack.NewDecoder(4096, nil)
	c.enc = hpack.NewEncoder(&c.hbuf)
	// A server that refused the connection has closed it: the reader
	// below then ends at once, and closed says so.
	_, _ = conn.Write([]byte(http2.ClientPreface))
	_ = c.fr.WriteSettings()
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.read()
	}()
	t.Cleanup(func() {
		_ = conn.Close()
		<-done
	})
	return c
}

// read answers SETTINGS and PINGs, as any client must, and records how the
// server ends streams and the connection. It sends no WINDOW_UPDATE.
func (c *rawConn) read() {
	defer close(c.closed)
	goneAway := false
	for {
		f, err := c.fr.ReadFrame()
		if err != nil {
			return
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				c.write(func() error { return c.fr.WriteSettingsAck() })
			}
		case *http2.PingFrame:
			if !f.IsAck() {
				c.write(func() error { return c.fr.WritePing(true, f.Data) })
			}
		case *http2.RSTStreamFrame:
			note(c.resets, f.StreamID)
		case *http2.MetaHeadersFrame:
			if f.StreamEnded() {
				note(c.trailers, trailer{f.StreamID, grpcStatus(f)})
			}
		case *http2.GoAwayFrame:
			if !goneAway {
				goneAway = true
				close(c.goAway)
			}
		}
	}
}

func grpcStatus(f *http2.MetaHeadersFrame) string {
	for _, h := range f.RegularFields() {
		if h.Name == "grpc-status" {
			return h.Value
		}
	}
	return ""
}

// note records an event unless the test keeps no more of them.
func note[T any](ch chan T, v T) {
	select {
	case ch <- v:
	default:
	}
}

// write runs one framer write under the lock; an error means the server
// has gone, which the test sees as closed.
func (c *rawConn) write(w func() error) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return w() == nil
}

// grpcHeaders are a gRPC call's request headers for method.
func grpcHeaders(method string) []hpack.HeaderField {
	return []hpack.HeaderField{
		{Name: ":method", Value: "POST"},
		{Name: ":scheme", Value: "http"},
		{Name: ":path", Value: method},
		{Name: ":authority", Value: "localhost"},
		{Name: "content-type", Value: "application/grpc"},
		{Name: "te", Value: "trailers"},
	}
}

// open starts a stream with fields as its header block (in one HEADERS
// frame: the fields are meant to compress well) and returns its id, or 0
// when the server has gone.
func (c *rawConn) open(fields []hpack.HeaderField, endStream bool) uint32 {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hbuf.Reset()
	for _, f := range fields {
		_ = c.enc.WriteField(f)
	}
	id := c.nextID
	c.nextID += 2
	err := c.fr.WriteHeaders(http2.HeadersFrameParam{
		StreamID: id, BlockFragment: c.hbuf.Bytes(), EndHeaders: true, EndStream: endStream,
	})
	if err != nil {
		return 0
	}
	return id
}

// request sends a gRPC message (its 5-byte prefix and msg) and ends the
// stream's client side.
func (c *rawConn) request(id uint32, msg []byte) bool {
	frame := make([]byte, 5+len(msg))
	wire.BigEndian.PutUint32(frame[1:], uint32(len(msg)))
	copy(frame[5:], msg)
	return c.write(func() error { return c.fr.WriteData(id, true, frame) })
}

func (c *rawConn) reset(id uint32) bool {
	return c.write(func() error { return c.fr.WriteRSTStream(id, http2.ErrCodeCancel) })
}

// getStreamRequest is api.ApiRequest{Length: n} in wire form.
func getStreamRequest(n uint64) []byte {
	return wire.AppendUvarint([]byte{0x08}, n)
}
