package backend

import (
	"context"
	"slices"
	"strconv"
	"sync"

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
// Both need api.Codec on the server, which passes api.Encoded through.

// encodedServiceDesc is api.Api's description with getAll and getStream
// served from encoded bytes.
func encodedServiceDesc() *grpc.ServiceDesc {
	desc := api.Api_ServiceDesc
	desc.Methods = slices.Clone(desc.Methods)
	desc.Streams = slices.Clone(desc.Streams)
	for i := range desc.Methods {
		if desc.Methods[i].MethodName == "getAll" {
			desc.Methods[i].Handler = getAllEncodedHandler
		}
	}
	for i := range desc.Streams {
		if desc.Streams[i].StreamName == "getStream" {
			desc.Streams[i].Handler = getStreamEncodedHandler
		}
	}
	return &desc
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
	info := &grpc.UnaryServerInfo{Server: srv, FullMethod: api.Api_GetAll_FullMethodName}
	return interceptor(ctx, in, info, func(_ context.Context, req any) (any, error) {
		return s.getAllEncoded(req.(*api.ApiRequest))
	})
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
	return &api.Encoded{Data: mem.BufferSlice{mem.SliceBuffer(s.allItems.prefix(n))}}, nil
}

// Each chunk holds up to itemsPerChunk items, about 16 KiB.
const (
	maxItemBytes  = 1 + 5 + 1 + 1 + len("name ") + 10 // id tag and varint, name tag, length and text
	itemsPerChunk = int32(16 << 10 / maxItemBytes)
)

// itemChunk is a run of consecutive items encoded together. gRPC keeps each
// message's bytes and its BufferSlice until the loopy writer has written
// them, after SendMsg returns, so nothing in a chunk is ever written twice:
// each chunk is new, and the collector frees it once its last item is out.
// Handing gRPC a *mem.SliceBuffer that points into the chunk's own array of
// them costs no allocation per item (a SliceBuffer in an interface would
// cost one, and a pooled buffer split per item an atomic count and a pool
// round trip each, which showed as 14% of the stream's CPU).
type itemChunk struct {
	data  []byte
	items []mem.SliceBuffer
	refs  []mem.Buffer
}

func newItemChunk(first, count int32) *itemChunk {
	c := &itemChunk{
		data:  make([]byte, 0, int(count)*maxItemBytes),
		items: make([]mem.SliceBuffer, count),
		refs:  make([]mem.Buffer, count),
	}
	for i := range c.items {
		start := len(c.data)
		c.data = appendItem(c.data, first+int32(i))
		c.items[i] = c.data[start:len(c.data):len(c.data)]
		c.refs[i] = &c.items[i]
	}
	return c
}

// message returns item i of the chunk as a one-buffer message.
func (c *itemChunk) message(i int) mem.BufferSlice {
	return c.refs[i : i+1 : i+1]
}

// streamEncoded is GetStream with items encoded a chunk at a time.
func (s *Service) streamEncoded(req *api.ApiRequest, stream grpc.ServerStream) error {
	n := req.GetLength()
	if err := checkLength(n, s.limits.MaxStreamItems); err != nil {
		return err
	}
	done := stream.Context().Done()
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
		if chunk == nil || int(id-first) == len(chunk.items) {
			first = id
			chunk = newItemChunk(id, min(n-id+1, itemsPerChunk))
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
