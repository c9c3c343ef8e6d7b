package api_test

import (
	"strconv"
	"testing"

	"google.golang.org/grpc/encoding"
	gproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"

	"github.com/grpcplay/grpcplay/api"
)

func benchItems(n int) *api.Items {
	items := make([]*api.Item, n)
	for i := range items {
		items[i] = &api.Item{Id: int32(i + 1), Name: "name " + strconv.Itoa(i+1)}
	}
	return &api.Items{Items: items}
}

var benchCodecs = []struct {
	name  string
	codec encoding.CodecV2
}{
	{"codec=grpc-proto", encoding.GetCodecV2(gproto.Name)},
	{"codec=grpcplay", api.Codec{}},
}

func BenchmarkCodec(b *testing.B) {
	msgs := []struct {
		name string
		msg  func() any
		new  func() any
	}{
		{"Items1000", func() any { return benchItems(1000) }, func() any { return new(api.Items) }},
		{"Item", func() any { return &api.Item{Id: 123456, Name: "name 123456"} }, func() any { return new(api.Item) }},
		{"Hello", func() any { return &api.Hello{Message: "Hello Gonzalo!"} }, func() any { return new(api.Hello) }},
	}
	for _, c := range benchCodecs {
		for _, m := range msgs {
			msg := m.msg()
			b.Run(c.name+"/"+m.name+"/encode", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					data, err := c.codec.Marshal(msg)
					if err != nil {
						b.Fatal(err)
					}
					data.Free()
				}
			})
			data, err := c.codec.Marshal(msg)
			if err != nil {
				b.Fatal(err)
			}
			wire := mem.BufferSlice{mem.SliceBuffer(data.Materialize())}
			b.Run(c.name+"/"+m.name+"/decode", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := c.codec.Unmarshal(wire, m.new()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
