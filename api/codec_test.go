package api_test

import (
	"bytes"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc/encoding"
	gproto "google.golang.org/grpc/encoding/proto"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/api"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// randomString mixes ASCII, multi-byte runes and lengths around the varint
// boundaries of a length prefix (127/128 bytes).
func randomString(r *rand.Rand) string {
	runes := []rune{'a', 'Z', '0', ' ', 'é', 'ß', '世', '😀', 0}
	n := r.IntN(200)
	if r.IntN(4) == 0 {
		n = 0
	}
	var b strings.Builder
	for range n {
		b.WriteRune(runes[r.IntN(len(runes))])
	}
	return b.String()
}

func randomInt32(r *rand.Rand) int32 {
	switch r.IntN(6) {
	case 0:
		return 0
	case 1:
		return []int32{1, 127, 128, 16383, 16384, -1, math.MaxInt32, math.MinInt32}[r.IntN(8)]
	case 2:
		return -r.Int32()
	default:
		return r.Int32()
	}
}

func randomMessages(r *rand.Rand) []proto.Message {
	items := make([]*api.Item, r.IntN(50))
	for i := range items {
		items[i] = &api.Item{Id: randomInt32(r), Name: randomString(r)}
	}
	return []proto.Message{
		&api.HelloRequest{Name: randomString(r)},
		&api.Hello{Message: randomString(r)},
		&api.ApiRequest{Length: randomInt32(r)},
		&api.Item{Id: randomInt32(r), Name: randomString(r)},
		&api.Items{Items: items},
	}
}

// The codec must be invisible on the wire: for many random values of every
// message, it writes exactly proto.Marshal's deterministic bytes and reads
// them back to an equal message.
func TestCodecMatchesProtoMarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	codec := api.Codec{}
	for range 500 {
		for _, msg := range randomMessages(r) {
			want, err := proto.MarshalOptions{Deterministic: true}.Marshal(msg)
			if err != nil {
				t.Fatal(err)
			}
			data, err := codec.Marshal(msg)
			if err != nil {
				t.Fatalf("Marshal(%v): %v", msg, err)
			}
			got := data.Materialize()
			data.Free()
			if !bytes.Equal(got, want) {
				t.Fatalf("Marshal(%T %v)\n got % x\nwant % x", msg, msg, got, want)
			}
			back := msg.ProtoReflect().New().Interface()
			if err := codec.Unmarshal(split(want), back); err != nil {
				t.Fatalf("Unmarshal(%T): %v", msg, err)
			}
			if !proto.Equal(back, msg) {
				t.Fatalf("round trip of %T: got %v, want %v", msg, back, msg)
			}
		}
	}
}

// split spreads b over several buffers, as gRPC hands over a message that
// arrived in several HTTP/2 frames.
func split(b []byte) mem.BufferSlice {
	var s mem.BufferSlice
	for len(b) > 3 {
		s = append(s, mem.SliceBuffer(bytes.Clone(b[:3])))
		b = b[3:]
	}
	return append(s, mem.SliceBuffer(bytes.Clone(b)))
}

// A large reply goes through gRPC's buffer pool; the bytes must not change.
func TestCodecLargeReplyFromPool(t *testing.T) {
	items := make([]*api.Item, 5000)
	for i := range items {
		items[i] = &api.Item{Id: int32(i + 1), Name: "name " + strings.Repeat("x", i%7)}
	}
	msg := &api.Items{Items: items}
	want, _ := proto.Marshal(msg)
	data, err := api.Codec{}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	defer data.Free()
	if got := data.Materialize(); !bytes.Equal(got, want) {
		t.Fatalf("pooled encoding differs from proto.Marshal (%d vs %d bytes)", len(got), len(want))
	}
}

// proto3 strings must be UTF-8: the codec refuses what proto refuses, both
// ways, instead of passing bad text on.
func TestCodecRefusesInvalidUTF8(t *testing.T) {
	codec := api.Codec{}
	bad := string([]byte{0xff, 0xfe})
	for _, msg := range []proto.Message{
		&api.HelloRequest{Name: bad},
		&api.Hello{Message: bad},
		&api.Item{Name: bad},
		&api.Items{Items: []*api.Item{{Name: "ok"}, {Name: bad}}},
	} {
		if _, err := proto.Marshal(msg); err == nil {
			t.Fatalf("proto.Marshal(%T) accepted invalid UTF-8; the test's premise is wrong", msg)
		}
		if _, err := codec.Marshal(msg); err == nil {
			t.Errorf("Marshal(%T) accepted invalid UTF-8", msg)
		}
		wire, _ := proto.MarshalOptions{}.Marshal(&api.Item{Id: 1}) // a valid start
		wire = append(wire, 0x12, 2, 0xff, 0xfe)                    // field 2 (string), 2 bad bytes
		target := msg.ProtoReflect().New().Interface()
		if _, isItem := target.(*api.Item); isItem {
			if err := codec.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, target); err == nil {
				t.Errorf("Unmarshal(%T) accepted invalid UTF-8", target)
			}
		}
	}
}

// Other services on the same server (health, reflection) keep gRPC's codec.
func TestCodecFallsBackForOtherMessages(t *testing.T) {
	msg := &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}
	data, err := api.Codec{}.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := encoding.GetCodecV2(gproto.Name).Marshal(msg)
	if !bytes.Equal(data.Materialize(), want.Materialize()) {
		t.Fatal("health reply differs from the standard codec's")
	}
	var back healthpb.HealthCheckResponse
	if err := (api.Codec{}).Unmarshal(data, &back); err != nil || back.Status != msg.Status {
		t.Fatalf("Unmarshal = %v, %v", back.Status, err)
	}
}

// An Encoded reply goes out exactly as given.
func TestCodecPassesEncodedThrough(t *testing.T) {
	want, _ := proto.Marshal(&api.Item{Id: 3, Name: "name 3"})
	data, err := api.Codec{}.Marshal(&api.Encoded{Data: mem.BufferSlice{mem.SliceBuffer(want)}})
	if err != nil || !bytes.Equal(data.Materialize(), want) {
		t.Fatalf("Marshal(Encoded) = % x, %v; want % x", data.Materialize(), err, want)
	}
}

// On any input, valid or not, decoding gives what proto.Unmarshal gives: the
// same message, or an error when (and only when) it fails. The inputs are
// valid encodings with random bytes changed, cut or added.
func TestCodecDecodesLikeProtoUnmarshal(t *testing.T) {
	r := rand.New(rand.NewPCG(9, 9))
	for range 3000 {
		for _, msg := range randomMessages(r) {
			wire, _ := proto.Marshal(msg)
			switch r.IntN(4) {
			case 0:
				if len(wire) > 0 {
					wire[r.IntN(len(wire))] = byte(r.IntN(256))
				}
			case 1:
				wire = wire[:r.IntN(len(wire)+1)]
			case 2:
				wire = append(wire, byte(r.IntN(256)), byte(r.IntN(256)))
			}
			want := msg.ProtoReflect().New().Interface()
			wantErr := proto.Unmarshal(wire, want)
			got := msg.ProtoReflect().New().Interface()
			gotErr := api.Codec{}.Unmarshal(mem.BufferSlice{mem.SliceBuffer(wire)}, got)
			if (gotErr == nil) != (wantErr == nil) {
				t.Fatalf("%T from % x: codec error %v, proto error %v", msg, wire, gotErr, wantErr)
			}
			if wantErr == nil && !proto.Equal(got, want) {
				t.Fatalf("%T from % x: codec gave %v, proto gave %v", msg, wire, got, want)
			}
		}
	}
}
