package backend

import (
	"context"
	"testing"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	"google.golang.org/grpc/metadata"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/vtcodec"
)

// discardStream is a server stream that encodes each message with codec and
// then drops it, so a benchmark of the handler's loop counts what the loop
// and the encoding cost, without HTTP/2.
type discardStream struct {
	ctx   context.Context
	codec encoding.CodecV2
	req   *api.ApiRequest
	bytes int
}

func (s *discardStream) SetHeader(metadata.MD) error  { return nil }
func (s *discardStream) SendHeader(metadata.MD) error { return nil }
func (s *discardStream) SetTrailer(metadata.MD)       {}
func (s *discardStream) Context() context.Context     { return s.ctx }
func (s *discardStream) RecvMsg(m any) error {
	*m.(*api.ApiRequest) = api.ApiRequest{Length: s.req.GetLength()}
	return nil
}

func (s *discardStream) SendMsg(m any) error {
	data, err := s.codec.Marshal(m)
	if err != nil {
		return err
	}
	s.bytes += data.Len()
	data.Free()
	return nil
}

var _ grpc.ServerStream = (*discardStream)(nil)

// BenchmarkStreamLoop runs the getStream handler the server registers for
// 1000 items, encoding each item as the server would.
func BenchmarkStreamLoop(b *testing.B) {
	desc, srv, codec := registeredHandlers()
	handler := desc.Streams[0].Handler
	stream := &discardStream{ctx: context.Background(), codec: codec, req: &api.ApiRequest{Length: 1000}}
	b.ReportAllocs()
	for b.Loop() {
		if err := handler(srv, stream); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "items/s")
}

// BenchmarkGetAllHandler runs the getAll handler the server registers for
// 1000 items and encodes its reply as the server would.
func BenchmarkGetAllHandler(b *testing.B) {
	desc, srv, codec := registeredHandlers()
	handler := desc.Methods[1].Handler
	if desc.Methods[1].MethodName != "getAll" {
		b.Fatalf("method 1 is %s", desc.Methods[1].MethodName)
	}
	dec := func(m any) error { *m.(*api.ApiRequest) = api.ApiRequest{Length: 1000}; return nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		reply, err := handler(srv, ctx, dec, nil)
		if err != nil {
			b.Fatal(err)
		}
		data, err := codec.Marshal(reply)
		if err != nil {
			b.Fatal(err)
		}
		data.Free()
	}
}

// registeredHandlers returns what New registers and encodes with.
func registeredHandlers() (grpc.ServiceDesc, any, encoding.CodecV2) {
	return api.Api_ServiceDesc, NewService(DefaultLimits), vtcodec.Codec{}
}
