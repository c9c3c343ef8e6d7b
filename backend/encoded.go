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
//     memory is bounded by the limit: about 19 bytes an item plus 4 bytes
//     of index, 2.3 MB at the default 100,000 (3.5 MB at the 150,000 ceiling).
//   - getStream encodes its items straight into pooled chunks of gRPC's
//     buffer pool, several hundred items a chunk, and hands each item to gRPC
//     as a reference into its chunk, so the loop allocates nothing per item.
//     A chunk goes back to the pool when gRPC has written its last item.
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

// Each chunk holds up to itemsPerChunk items, so that a chunk fits one of
// the pool's 16 KiB buffers.
const (
	maxItemBytes  = 1 + 5 + 1 + 1 + len("name ") + 10 // id tag and varint, name tag, length and text
	itemsPerChunk = int32(16 << 10 / maxItemBytes)
)

// streamEncoded is GetStream with each item encoded into a pooled chunk.
func (s *Service) streamEncoded(req *api.ApiRequest, stream grpc.ServerStream) error {
	n := req.GetLength()
	if err := checkLength(n, s.limits.MaxStreamItems); err != nil {
		return err
	}
	pool := mem.DefaultBufferPool()
	done := stream.Context().Done()
	var (
		rest  mem.Buffer // the current chunk's items not yet sent
		sizes []int      // their sizes
		bufs  []mem.Buffer
		msg   api.Encoded
	)
	defer func() {
		if rest != nil {
			rest.Free()
		}
	}()
	for id := int32(1); id <= n; id++ {
		// SendMsg only notices cancellation once flow control blocks it; a
		// fast reader that goes away would otherwise keep the loop running.
		select {
		case <-done:
			return status.FromContextError(stream.Context().Err()).Err()
		default:
		}
		if rest == nil {
			rest, sizes = encodeChunk(pool, id, min(n-id+1, itemsPerChunk), sizes[:0])
			// gRPC keeps each message's BufferSlice until it is written, so
			// every chunk gets its own backing array for them.
			bufs = make([]mem.Buffer, len(sizes))
		}
		j := len(bufs) - len(sizes)
		if len(sizes) == 1 {
			bufs[j], rest = rest, nil
		} else {
			bufs[j], rest = mem.SplitUnsafe(rest, sizes[0])
		}
		sizes = sizes[1:]
		msg.Data = bufs[j : j+1 : j+1]
		if err := stream.SendMsg(&msg); err != nil {
			return err
		}
	}
	return nil
}

// encodeChunk encodes the items first..first+count-1 into one pooled buffer
// and returns it with each item's size.
func encodeChunk(pool mem.BufferPool, first, count int32, sizes []int) (mem.Buffer, []int) {
	raw := pool.Get(int(count) * maxItemBytes)
	b := (*raw)[:0]
	for id := first; id < first+count; id++ {
		start := len(b)
		b = appendItem(b, id)
		sizes = append(sizes, len(b)-start)
	}
	*raw = b
	return mem.NewBuffer(raw, pool), sizes
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
