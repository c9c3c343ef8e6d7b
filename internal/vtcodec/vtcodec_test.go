package vtcodec_test

import (
	"bytes"
	"strings"
	"testing"

	"google.golang.org/grpc/encoding"
	gproto "google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/vtcodec"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func standard() encoding.CodecV2 { return encoding.GetCodecV2(gproto.Name) }

func items(n int) *api.Items {
	m := &api.Items{}
	for i := 1; i <= n; i++ {
		m.Items = append(m.Items, &api.Item{Id: int32(i), Name: "name " + strings.Repeat("x", i%7)})
	}
	return m
}

// messages are api's messages, small and over the pooling threshold, and
// one the codec hands to the standard codec.
var messages = []proto.Message{
	&api.HelloRequest{Name: "José 🌍"},
	&api.Hello{Message: "Hello " + strings.Repeat("a", 5000) + "!"},
	&api.ApiRequest{Length: -7},
	&api.Item{Id: 1 << 30, Name: "name 1073741824"},
	items(0), items(3), items(1000),
	&healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING},
}

// The codec writes the standard codec's bytes, and reads them back.
func TestSameBytesAsStandard(t *testing.T) {
	for _, m := range messages {
		got, err := vtcodec.Codec{}.Marshal(m)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		want, err := standard().Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got.Materialize(), want.Materialize()) {
			t.Fatalf("%T: bytes differ from the standard codec's", m)
		}
		back := m.ProtoReflect().New().Interface()
		if err := (vtcodec.Codec{}).Unmarshal(got, back); err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !proto.Equal(back, m) {
			t.Fatalf("%T: decoded %v, want %v", m, back, m)
		}
		got.Free()
		want.Free()
	}
}

// Input the VT decoder refuses gets protobuf's answer: a length sent as a
// string is an unknown field to protobuf, so the request is valid and its
// length 0.
func TestRefusedInputGetsProtobufsAnswer(t *testing.T) {
	b := protowire.AppendTag(nil, 1, protowire.BytesType)
	b = protowire.AppendString(b, "10")
	var req api.ApiRequest
	if err := (vtcodec.Codec{}).Unmarshal(mem.BufferSlice{mem.SliceBuffer(b)}, &req); err != nil {
		t.Fatal(err)
	}
	if req.GetLength() != 0 || len(req.ProtoReflect().GetUnknown()) == 0 {
		t.Fatalf("got %v, want length 0 and the field kept as unknown", &req)
	}
	garbage := mem.BufferSlice{mem.SliceBuffer([]byte{0xff, 0xff, 0xff})}
	if err := (vtcodec.Codec{}).Unmarshal(garbage, &req); err == nil {
		t.Fatal("garbage decoded without an error")
	}
}

// The benchmarks compare the codec with the standard one on the replies the
// service sends most: a greeting, getAll(10) and getAll(1000), and a
// stream's item.
func BenchmarkCodec(b *testing.B) {
	replies := []struct {
		name string
		msg  proto.Message
	}{
		{"hello", &api.Hello{Message: "Hello world!"}},
		{"item", &api.Item{Id: 500, Name: "name 500"}},
		{"items=10", items(10)},
		{"items=1000", items(1000)},
	}
	codecs := []struct {
		name  string
		codec encoding.CodecV2
	}{{"codec=vt", vtcodec.Codec{}}, {"codec=standard", standard()}}
	for _, r := range replies {
		for _, c := range codecs {
			b.Run(r.name+"/marshal/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					data, err := c.codec.Marshal(r.msg)
					if err != nil {
						b.Fatal(err)
					}
					data.Free()
				}
			})
			data, err := c.codec.Marshal(r.msg)
			if err != nil {
				b.Fatal(err)
			}
			b.Run(r.name+"/unmarshal/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := c.codec.Unmarshal(data, r.msg.ProtoReflect().New().Interface()); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
