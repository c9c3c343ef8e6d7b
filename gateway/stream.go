package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/clientlimit"
)

// streamPath serves getStream as newline-delimited JSON, in grpc-gateway's
// streaming format: one line per item, {"result":{"id":1,"name":"name 1"}},
// and, when the stream fails after its first item, a last line
// {"error":{"code":4,"message":"...","details":[]}}. A stream that fails
// before its first item is an ordinary error response (status code and a
// google.rpc.Status body), like the unary calls'. A 200 response whose last
// line is a result is complete.
var streamPath = routeOf("getStream")

// ndjsonContentType names the streaming format; each line is JSON.
const ndjsonContentType = "application/x-ndjson"

// grpc-gateway's generated in-process handlers refuse server streaming, so
// getStream gets this handler: it calls the same Service.GetStream with a
// stream that writes each item to the HTTP response as it is sent.
func (s *Server) serveStream(w http.ResponseWriter, r *http.Request, _ map[string]string) {
	_, m := runtime.MarshalerForRequest(s.mux, r)
	if _, binary := m.(*vtProtoMarshaller); binary {
		// Protobuf has no line delimiter: the stream stays NDJSON.
		_, m = runtime.MarshalerForRequest(s.mux, &http.Request{Header: http.Header{}})
	}
	var req api.ApiRequest
	if err := r.ParseForm(); err != nil {
		s.badRequest(w, r, err.Error())
		return
	}
	// The same parser, and so the same errors, as the unary calls'.
	if err := queryParser.Parse(&req, r.Form, utilities.NewDoubleArray(nil)); err != nil {
		s.badRequest(w, r, err.Error())
		return
	}
	slot, ok := s.streamSlots.Acquire(r)
	if !ok {
		s.refuse(w, r, "your address holds its share of the %d stream slots already; retry later", s.cfg.MaxStreams)
		return
	}
	defer slot.Release()
	// The slot's context ends when the client goes away, the deadline
	// passes or the slot goes to a client holding fewer (which also cuts a
	// write blocked on this client); this one also ends when the server
	// shuts down.
	ctx, cancel := context.WithCancel(slot.Context())
	defer cancel()
	defer context.AfterFunc(s.streamsCtx, cancel)()
	defer slot.Stop(w)()

	out := &ndjsonStream{ctx: ctx, slot: slot, w: w, rc: http.NewResponseController(w), marshaler: m, reader: s.streamSlots.Meter(s.cfg.SlowReader)}
	defer out.end(nil)
	err := s.svc.GetStream(&req, out)
	if err != nil && s.streamsCtx.Err() != nil && r.Context().Err() == nil {
		err = status.Error(codes.Unavailable, "the server is shutting down; retry the stream")
	}
	out.mu.Lock()
	started := out.started
	out.mu.Unlock()
	if err != nil && !started {
		out.end(nil)
		runtime.HTTPError(ctx, s.mux, m, w, r, err)
		return
	}
	if err != nil {
		s.logFailure(r, err)
	}
	out.end(err)
}

// ndjsonStream is a grpc.ServerStreamingServer[api.Item] whose Send writes
// one NDJSON line. The first line is flushed at once; later lines are
// flushed at most flushInterval after they are written, so that a fast
// stream does not pay a system call per item (gRPC batches its writes
// too), while a slow one still delivers each item promptly.
type ndjsonStream struct {
	ctx       context.Context
	slot      *clientlimit.Slot // evicted, it takes no more writes
	w         http.ResponseWriter
	rc        *http.ResponseController
	marshaler runtime.Marshaler

	// mu guards the response against the flush timer's goroutine.
	mu         sync.Mutex
	started    bool
	ended      bool // the handler has returned: the response is gone
	flushTimer *time.Timer
	flushDue   bool
	lastFlush  time.Time
	writeErr   error
	// reader drops a client that reads slower than Config.SlowReader;
	// unflushed and waited are what it has not been told of yet.
	reader    *clientlimit.Meter
	unflushed int
	waited    time.Duration

	// Send's own buffers, reused from item to item.
	compact, line bytes.Buffer
}

var _ grpc.ServerStreamingServer[api.Item] = (*ndjsonStream)(nil)

// flushInterval bounds how long a written line may wait in the buffer.
const flushInterval = 5 * time.Millisecond

func (o *ndjsonStream) Send(item *api.Item) error {
	line, err := o.resultLine(item)
	if err != nil {
		return status.Errorf(codes.Internal, "encoding item %d: %v", item.GetId(), err)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.started {
		o.w.Header().Set("Content-Type", ndjsonContentType)
		o.started = true
	}
	if err := o.write(line); err != nil {
		return err
	}
	wait := flushInterval - time.Since(o.lastFlush)
	switch {
	case wait <= 0:
		return o.flush()
	case o.flushDue:
	case o.flushTimer == nil:
		o.flushDue = true
		o.flushTimer = time.AfterFunc(wait, o.flushLater)
	default:
		o.flushDue = true
		o.flushTimer.Reset(wait)
	}
	return nil
}

// resultLine is the line grpc-gateway's own ForwardResponseStream writes for
// an item, byte for byte: it marshals {"result": item} through
// encoding/json, which compacts the item's protojson and escapes <, > and &.
// Doing the same by hand saves the map and the reflection, about half the
// cost of a line.
func (o *ndjsonStream) resultLine(item *api.Item) ([]byte, error) {
	raw, err := o.marshaler.Marshal(item)
	if err != nil {
		return nil, err
	}
	o.compact.Reset()
	if err := json.Compact(&o.compact, raw); err != nil {
		return nil, err
	}
	o.line.Reset()
	o.line.WriteString(`{"result":`)
	json.HTMLEscape(&o.line, o.compact.Bytes())
	o.line.WriteString("}\n")
	return o.line.Bytes(), nil
}

func (o *ndjsonStream) write(line []byte) error {
	if o.writeErr != nil {
		return o.writeErr
	}
	start := time.Now()
	if _, err := o.w.Write(line); err != nil {
		o.writeErr = status.Errorf(codes.Canceled, "the client stopped reading: %v", err)
	}
	// A Write waits on the client when the response's buffer is full.
	o.unflushed += len(line)
	o.waited += time.Since(start)
	return o.writeErr
}

// flush sends what is buffered. Each flush also moves the write deadline:
// a write blocks only when the client stops reading, and it may not block
// for long, whatever the stream's own deadline.
func (o *ndjsonStream) flush() error {
	o.flushDue = false
	o.lastFlush = time.Now()
	if o.writeErr != nil {
		return o.writeErr
	}
	_ = o.rc.SetWriteDeadline(o.reader.Deadline(o.lastFlush))
	// Checked after the deadline is set, so that an eviction's deadline in
	// the past (Slot.Stop) is never moved back.
	if o.slot.Evicted() {
		o.writeErr = status.Error(codes.Canceled, clientlimit.ErrEvicted.Error())
		return o.writeErr
	}
	if err := o.rc.Flush(); err != nil {
		o.writeErr = status.Errorf(codes.Canceled, "the client stopped reading: %v", err)
		return o.writeErr
	}
	err := o.reader.Wrote(o.unflushed, o.waited+time.Since(o.lastFlush))
	o.unflushed, o.waited = 0, 0
	if err != nil {
		// Cut, not ended with an error line: the client would not read it.
		o.writeErr = status.Errorf(codes.Canceled, "dropped a slow reader: %v", err)
	}
	return o.writeErr
}

func (o *ndjsonStream) flushLater() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.flushDue && !o.ended {
		o.flush()
	}
}

// end is called once the service has returned: it writes the final error
// line, if any, and stops the flush timer, since the response may not be
// touched once the handler has returned. Only the first call does anything,
// so that the handler may also defer one for a panicking service.
func (o *ndjsonStream) end(err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ended {
		return
	}
	o.ended = true
	if o.flushTimer != nil {
		o.flushTimer.Stop()
	}
	if err != nil {
		line, mErr := o.marshaler.Marshal(map[string]proto.Message{"error": status.Convert(err).Proto()})
		if mErr != nil {
			return
		}
		_ = o.rc.SetWriteDeadline(time.Now().Add(writeMargin))
		// The client may be gone already; there is no one left to tell.
		_ = o.write(line) // the marshaler ends it with a newline
	}
	// net/http flushes the rest when the handler returns.
}

func (o *ndjsonStream) Context() context.Context { return o.ctx }

func (o *ndjsonStream) SendMsg(m any) error {
	item, ok := m.(*api.Item)
	if !ok {
		return status.Errorf(codes.Internal, "getStream sent a %T, not an api.Item", m)
	}
	return o.Send(item)
}

func (o *ndjsonStream) RecvMsg(any) error {
	return status.Error(codes.Internal, "getStream's request was already read")
}

// Headers and trailers set by the service have no HTTP counterpart here: the
// service sets none, and the response's headers go out with the first item.
func (o *ndjsonStream) SetHeader(metadata.MD) error  { return nil }
func (o *ndjsonStream) SendHeader(metadata.MD) error { return nil }
func (o *ndjsonStream) SetTrailer(metadata.MD)       {}
