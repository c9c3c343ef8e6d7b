package backend

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc"
	"google.golang.org/grpc/mem"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/grpcplay/grpcplay/api"
)

// The Server answers getAll and getStream from bytes it encodes itself, not
// from the api.Item structs that GetAll and GetStream build: those methods
// stay the reference (and serve api.ApiServer users such as tests), and
// encoded_test.go checks that both give proto.Marshal's exact bytes.
//
//   - getAll(n) is a pure function of n, and its reply is the first bytes of
//     getAll(MaxItems)'s: the items 1..n come first in both. So the Service
//     encodes getAll(MaxItems) once, on the first call, and answers every n
//     with a prefix of it, without allocating or encoding anything. The
//     memory is bounded by the limit: about 18 bytes an item plus 4 bytes
//     of index, 2.2 MB at the default 100,000 (3.3 MB at the 150,000 ceiling).
//   - getStream encodes its items straight into chunks of several hundred
//     items and hands each item to gRPC as a reference into its chunk, so
//     the loop allocates nothing per item.
//
//   - sayHello writes its reply's bytes straight into one buffer, in one
//     allocation with the message that carries it, instead of building a
//     Hello and its string and then encoding them.
//   - The unary handlers give interceptors an info and a handler made once
//     per Service; the generated ones make both on every call.
//
// They need api.Codec on the server, which passes api.Encoded through.

// encodedServiceDesc is api.Api's description with every method served
// from encoded bytes.
func encodedServiceDesc() *grpc.ServiceDesc {
	desc := api.Api_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	desc.Streams = slices.Clone(desc.Streams)
	for i := range desc.Methods {
		switch desc.Methods[i].MethodName {
		case "getAll":
			desc.Methods[i].Handler = getAllEncodedHandler
		case "sayHello":
			desc.Methods[i].Handler = sayHelloEncodedHandler
		}
	}
	for i := range desc.Streams {
		if desc.Streams[i].StreamName == "getStream" {
			desc.Streams[i].Handler = getStreamEncodedHandler
		}
	}
	return &desc
}

// unaryMethod is what a unary handler passes its interceptor.
type unaryMethod struct {
	info    *grpc.UnaryServerInfo
	handler grpc.UnaryHandler
}

func (s *Service) unaryMethod(fullMethod string, call func(req any) (any, error)) unaryMethod {
	return unaryMethod{
		info:    &grpc.UnaryServerInfo{Server: s, FullMethod: fullMethod},
		handler: func(_ context.Context, req any) (any, error) { return call(req) },
	}
}

// getAllEncodedHandler is the generated getAll handler, calling getAllEncoded.
func getAllEncodedHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(api.ApiRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*Service)
	if interceptor == nil {
		return s.getAllEncoded(in)
	}
	return interceptor(ctx, in, s.getAll.info, s.getAll.handler)
}

// sayHelloEncodedHandler is the generated sayHello handler, calling
// sayHelloEncoded.
func sayHelloEncodedHandler(srv any, ctx context.Context, dec func(any) error, interceptor grpc.UnaryServerInterceptor) (any, error) {
	in := new(api.HelloRequest)
	if err := dec(in); err != nil {
		return nil, err
	}
	s := srv.(*Service)
	if interceptor == nil {
		return s.sayHelloEncoded(in)
	}
	return interceptor(ctx, in, s.sayHello.info, s.sayHello.handler)
}

// encodedReply is a one-buffer message and its buffer, allocated together.
// The message holds a pointer to the SliceBuffer: a SliceBuffer itself in
// the interface would cost an allocation of its own.
type encodedReply struct {
	msg  api.Encoded
	bufs [1]mem.Buffer
	data mem.SliceBuffer
}

func newEncodedReply(data []byte) *api.Encoded {
	r := &encodedReply{data: data}
	r.bufs[0] = &r.data
	r.msg.Data = r.bufs[:]
	return &r.msg
}

// sayHelloEncoded is SayHello's reply in wire form: what
// proto.Marshal(SayHello(req)) writes. The name is UTF-8, as api.Codec
// checked when it decoded the request, and so is the reply.
func (s *Service) sayHelloEncoded(req *api.HelloRequest) (*api.Encoded, error) {
	name := req.GetName()
	if err := s.checkName(name); err != nil {
		return nil, err
	}
	size := len("Hello ") + len(name) + len("!")
	b := make([]byte, 0, 1+protowire.SizeVarint(uint64(size))+size)
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(size))
	b = append(b, "Hello "...)
	b = append(b, name...)
	b = append(b, '!')
	return newEncodedReply(b), nil
}

func getStreamEncodedHandler(srv any, stream grpc.ServerStream) error {
	in := new(api.ApiRequest)
	if err := stream.RecvMsg(in); err != nil {
		return err
	}
	return srv.(*Service).streamEncoded(in, stream)
}

// encodedItems is getAll(max) in wire form, made once.
type encodedItems struct {
	once sync.Once
	max  int32
	data []byte
	// ends[n] is the length of getAll(n)'s reply.
	ends []uint32
}

func (e *encodedItems) prefix(n int32) []byte {
	e.once.Do(func() {
		e.ends = make([]uint32, e.max+1)
		for id := int32(1); id <= e.max; id++ {
			e.data = appendItemsEntry(e.data, id)
			e.ends[id] = uint32(len(e.data))
		}
	})
	return e.data[:e.ends[n]:e.ends[n]]
}

func (s *Service) getAllEncoded(req *api.ApiRequest) (*api.Encoded, error) {
	n := req.GetLength()
	if err := checkLength(n, s.limits.MaxItems); err != nil {
		return nil, err
	}
	// A SliceBuffer's Free does nothing, so gRPC leaves the shared bytes be.
	return newEncodedReply(s.allItems.prefix(n)), nil
}

// Each chunk holds up to itemsPerChunk items, about 5 KiB: small, because a
// stalled stream pins the chunks its queued items point into.
const (
	maxItemBytes  = 1 + 5 + 1 + 1 + len("name ") + 10 // id tag and varint, name tag, length and text
	itemsPerChunk = int32(256)
)

// maxQueuedItems bounds the items of one stream that gRPC holds queued and
// not yet written to the connection. gRPC's own bound, a 64 KiB write quota
// a stream, counts payload bytes, and a queued item costs about 185 bytes
// more than its payload: a stream to a client that stopped reading would
// pin about 3,500 items, 650 KB. With this bound it pins about 85 KB (see
// docs/RELIABILITY.md), and the handler waits for the wire, as it waits for
// flow control. A fast reader keeps the queue well short of it.
const maxQueuedItems = 256

// trackEvery is the spacing of the items whose release says how far the
// connection has written the stream: items leave in order, so one in
// trackEvery is enough, and the others cost nothing.
const trackEvery = 64

// itemChunk is a run of consecutive items encoded together. gRPC keeps each
// message's bytes and its BufferSlice until the loopy writer has written
// them, after SendMsg returns, so nothing in a chunk is ever written twice:
// each chunk is new, and the collector frees it once its last item is out.
// Handing gRPC a *mem.SliceBuffer that points into the chunk's own array of
// them costs no allocation per item (a SliceBuffer in an interface would
// cost one, and a pooled buffer split per item an atomic count and a pool
// round trip each, which showed as 14% of the stream's CPU).
type itemChunk struct {
	data    []byte
	items   []mem.SliceBuffer
	refs    []mem.Buffer
	tracked []trackedItem
}

func newItemChunk(first, count int32, w *sendWindow) *itemChunk {
	c := &itemChunk{
		data:  make([]byte, 0, int(count)*maxItemBytes),
		items: make([]mem.SliceBuffer, count),
		refs:  make([]mem.Buffer, count),
	}
	if w != nil {
		c.tracked = make([]trackedItem, 0, count/trackEvery+1)
	}
	for i := range c.items {
		id := first + int32(i)
		start := len(c.data)
		c.data = appendItem(c.data, id)
		c.items[i] = c.data[start:len(c.data):len(c.data)]
		c.refs[i] = &c.items[i]
		if w != nil && id%trackEvery == 0 {
			// Within its capacity: the pointers into it stay valid.
			c.tracked = append(c.tracked, trackedItem{SliceBuffer: c.items[i], id: id, w: w})
			t := &c.tracked[len(c.tracked)-1]
			t.refs.Store(1) // SendMsg's
			c.refs[i] = t
		}
	}
	return c
}

// message returns item i of the chunk as a one-buffer message.
func (c *itemChunk) message(i int) mem.BufferSlice {
	return c.refs[i : i+1 : i+1]
}

// trackedItem is an item whose last release tells its stream's sendWindow
// that the connection has written it. gRPC counts its references: SendMsg
// holds one, the transport takes one while the item is queued, and the
// loopy writer drops the last once the item's bytes are on the connection.
type trackedItem struct {
	mem.SliceBuffer
	refs atomic.Int32
	id   int32
	w    *sendWindow
}

func (t *trackedItem) Ref() { t.refs.Add(1) }

func (t *trackedItem) Free() {
	if t.refs.Add(-1) == 0 {
		t.w.wrote(t.id)
	}
}

// sendWindow lets a stream's handler wait until the connection has written
// all but maxQueuedItems of what it sent.
type sendWindow struct {
	written  atomic.Int32 // the id of the last tracked item written
	resumeAt atomic.Int32 // while the handler waits: the id that wakes it
	wake     chan struct{}
}

func newSendWindow() *sendWindow { return &sendWindow{wake: make(chan struct{}, 1)} }

func (w *sendWindow) wrote(id int32) {
	w.written.Store(id)
	if r := w.resumeAt.Load(); r != 0 && id >= r {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// wait returns once item next may be sent, or with the stream's error once
// done is closed. It lets the queue drain to half before it resumes, so that
// a reader at the limit wakes the handler once per half queue, not per item.
func (w *sendWindow) wait(next int32, done <-chan struct{}) bool {
	if next-w.written.Load() <= maxQueuedItems {
		return true
	}
	w.resumeAt.Store(next - maxQueuedItems/2)
	defer w.resumeAt.Store(0)
	for next-w.written.Load() > maxQueuedItems/2 {
		select {
		case <-w.wake:
		case <-done:
			return false
		}
	}
	return true
}

// streamEncoded is GetStream with items encoded a chunk at a time.
func (s *Service) streamEncoded(req *api.ApiRequest, stream grpc.ServerStream) error {
	n := req.GetLength()
	if err := checkLength(n, s.limits.MaxStreamItems); err != nil {
		return err
	}
	done := stream.Context().Done()
	window := newSendWindow()
	var (
		chunk *itemChunk
		first int32 // the id of the chunk's first item
		msg   api.Encoded
	)
	for id := int32(1); id <= n; id++ {
		// SendMsg only notices cancellation once flow control blocks it; a
		// fast reader that goes away would otherwise keep the loop running.
		select {
		case <-done:
			return status.FromContextError(stream.Context().Err()).Err()
		default:
		}
		if !window.wait(id, done) {
			return status.FromContextError(stream.Context().Err()).Err()
		}
		if chunk == nil || int(id-first) == len(chunk.items) {
			first = id
			chunk = newItemChunk(id, min(n-id+1, itemsPerChunk), window)
		}
		msg.Data = chunk.message(int(id - first))
		if err := stream.SendMsg(&msg); err != nil {
			return err
		}
	}
	return nil
}

// appendItem appends item id in wire form: what proto.Marshal(NewItem(id))
// writes, field by field.
func appendItem(b []byte, id int32) []byte {
	if id != 0 {
		b = protowire.AppendTag(b, 1, protowire.VarintType)
		b = protowire.AppendVarint(b, uint64(int64(id)))
	}
	b = protowire.AppendTag(b, 2, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(len("name ")+digits(id)))
	b = append(b, "name "...)
	return strconv.AppendInt(b, int64(id), 10)
}

// appendItemsEntry appends item id as one entry of Items.items (field 1).
func appendItemsEntry(b []byte, id int32) []byte {
	b = protowire.AppendTag(b, 1, protowire.BytesType)
	b = protowire.AppendVarint(b, uint64(itemSize(id)))
	return appendItem(b, id)
}

func itemSize(id int32) int {
	n := 1 + 1 + len("name ") + digits(id)
	if id != 0 {
		n += 1 + protowire.SizeVarint(uint64(int64(id)))
	}
	return n
}

// digits is len(strconv.Itoa(id)) without making the string.
func digits(id int32) int {
	n, v := 1, int64(id)
	if v < 0 {
		n, v = 2, -v
	}
	for ; v >= 10; v /= 10 {
		n++
	}
	return n
}
