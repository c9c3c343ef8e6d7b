package backend

import (
	"bytes"
	"context"
	"math"
	"math/rand/v2"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/api"
)

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The hand-written item encoder writes proto.Marshal's bytes for every id,
// including those the service never sends (0 and negatives).
func TestAppendItemMatchesProtoMarshal(t *testing.T) {
	ids := []int32{0, -1, math.MinInt32, math.MaxInt32, 127, 128, 16383, 16384, 2097151, 2097152}
	for id := int32(1); id <= 3000; id++ {
		ids = append(ids, id)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		ids = append(ids, r.Int32(), -r.Int32())
	}
	for _, id := range ids {
		want := mustMarshal(t, NewItem(id))
		if got := appendItem(nil, id); !bytes.Equal(got, want) {
			t.Fatalf("appendItem(%d) = % x, want % x", id, got, want)
		}
		if got, want := itemSize(id), len(want); got != want {
			t.Fatalf("itemSize(%d) = %d, want %d", id, got, want)
		}
	}
}

// getAll's cached prefix is byte for byte the reply GetAll builds, for every
// length up to the limit.
func TestGetAllEncodedMatchesGetAll(t *testing.T) {
	s := NewService(Limits{MaxItems: 20_000, MaxStreamItems: 1, MaxNameBytes: 1})
	lengths := []int32{0, 1, 2, 9, 10, 99, 100, 127, 128, 999, 1000, 16_384, 19_999, 20_000}
	for n := int32(0); n < 300; n++ {
		lengths = append(lengths, n)
	}
	for _, n := range lengths {
		req := &api.ApiRequest{Length: n}
		reply, err := s.GetAll(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := s.getAllEncoded(req)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := enc.Data.Materialize(), mustMarshal(t, reply); !bytes.Equal(got, want) {
			t.Fatalf("getAll(%d): encoded reply differs from proto.Marshal(GetAll) (%d vs %d bytes)", n, len(got), len(want))
		}
	}
	for _, n := range []int32{-1, 20_001} {
		if _, err := s.getAllEncoded(&api.ApiRequest{Length: n}); status.Code(err) != codes.InvalidArgument {
			t.Errorf("getAll(%d): %v, want InvalidArgument", n, err)
		}
	}
}

// sayHello's encoded reply is byte for byte the one SayHello builds, and it
// refuses the same names.
func TestSayHelloEncodedMatchesSayHello(t *testing.T) {
	s := NewService(Limits{MaxItems: 1, MaxStreamItems: 1, MaxNameBytes: 300})
	names := []string{"", "x", "Gonzalo", "héllo wörld", "<b>&amp;</b>", strings.Repeat("a", 120), strings.Repeat("é", 150)}
	for _, name := range names {
		req := &api.HelloRequest{Name: name}
		reply, err := s.SayHello(context.Background(), req)
		if err != nil {
			t.Fatal(err)
		}
		enc, err := s.sayHelloEncoded(req)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := enc.Data.Materialize(), mustMarshal(t, reply); !bytes.Equal(got, want) {
			t.Fatalf("sayHello(%q) = % x, want % x", name, got, want)
		}
	}
	long := &api.HelloRequest{Name: strings.Repeat("x", 301)}
	_, want := s.SayHello(context.Background(), long)
	if _, err := s.sayHelloEncoded(long); status.Code(err) != codes.InvalidArgument || err.Error() != want.Error() {
		t.Errorf("sayHello(301 bytes) = %v, want %v", err, want)
	}
}

// recordingStream keeps the bytes of every message sent, encoded by the
// server's codec.
type recordingStream struct {
	discardStream
	sent [][]byte
}

func (s *recordingStream) SendMsg(m any) error {
	data, err := s.codec.Marshal(m)
	if err != nil {
		return err
	}
	s.sent = append(s.sent, data.Materialize())
	data.Free()
	return nil
}

// getStream sends item i as proto.Marshal(NewItem(i)), across chunk
// boundaries.
func TestStreamEncodedMatchesProtoMarshal(t *testing.T) {
	s := NewService(DefaultLimits)
	for _, n := range []int32{0, 1, itemsPerChunk - 1, itemsPerChunk, itemsPerChunk + 1, 3*itemsPerChunk + 17} {
		stream := &recordingStream{discardStream: discardStream{ctx: context.Background(), codec: api.Codec{}}}
		if err := s.streamEncoded(&api.ApiRequest{Length: n}, stream); err != nil {
			t.Fatal(err)
		}
		if len(stream.sent) != int(n) {
			t.Fatalf("getStream(%d) sent %d messages", n, len(stream.sent))
		}
		for i, got := range stream.sent {
			if want := mustMarshal(t, NewItem(int32(i+1))); !bytes.Equal(got, want) {
				t.Fatalf("getStream(%d) item %d = % x, want % x", n, i+1, got, want)
			}
		}
	}
	if err := s.streamEncoded(&api.ApiRequest{Length: -1}, &recordingStream{}); status.Code(err) != codes.InvalidArgument {
		t.Errorf("getStream(-1): %v, want InvalidArgument", err)
	}
}

// cancelAfter cancels the stream's context after a few messages.
type cancelAfter struct {
	discardStream
	cancel func()
	left   int
}

func (s *cancelAfter) SendMsg(m any) error {
	if s.left--; s.left == 0 {
		s.cancel()
	}
	return s.discardStream.SendMsg(m)
}

// A reader that goes away mid-chunk stops the loop at once with Canceled.
func TestStreamEncodedStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	stream := &cancelAfter{discardStream: discardStream{ctx: ctx, codec: api.Codec{}}, cancel: cancel, left: 5}
	err := NewService(DefaultLimits).streamEncoded(&api.ApiRequest{Length: 10_000_000}, stream)
	if status.Code(err) != codes.Canceled {
		t.Fatalf("err = %v, want Canceled", err)
	}
	if stream.bytes == 0 || stream.left != 0 {
		t.Fatalf("sent %d bytes, %d sends past the cancel", stream.bytes, -stream.left)
	}
}
