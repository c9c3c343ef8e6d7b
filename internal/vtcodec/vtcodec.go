// Package vtcodec is a gRPC codec that encodes and decodes the messages
// protoc-gen-go-vtproto generated code for through their MarshalVT and
// UnmarshalVT methods, which skip protobuf's reflection, and hands every other
// message (health, reflection) to grpc-go's standard proto codec. It writes
// the same bytes as the standard codec and keeps its name, "proto", so peers
// see the standard content-type. vtprotobuf's own codec/grpc would fail on
// the messages of health and reflection, which have no VT methods.
//
// grpc-go marks codec installation (grpc.ForceServerCodecV2,
// grpc.ForceCodecV2) and the CodecV2 interface experimental. No stable API
// chooses a codec for a server or a connection; the alternative,
// encoding.RegisterCodecV2, is experimental too and would replace "proto" for
// every gRPC user in the process.
//
// The VT decoder does not check that strings are UTF-8, as protobuf does: a
// service that takes strings checks them itself.
package vtcodec

import (
	"google.golang.org/grpc/encoding"
	gproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// vtMessage is what protoc-gen-go-vtproto generates for a message.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
	UnmarshalVT([]byte) error
}

// Codec is the codec; its zero value is ready to use.
type Codec struct{}

var _ encoding.CodecV2 = Codec{}

// Name is the content-subtype: the standard protobuf one.
func (Codec) Name() string { return gproto.Name }

func standard() encoding.CodecV2 { return encoding.GetCodecV2(gproto.Name) }

// Marshal encodes v, into a buffer from gRPC's pool when it is large enough
// to be worth one, as the standard codec does.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	m, ok := v.(vtMessage)
	if !ok {
		return standard().Marshal(v)
	}
	size := m.SizeVT()
	if mem.IsBelowBufferPoolingThreshold(size) {
		buf := make([]byte, size)
		if _, err := m.MarshalToSizedBufferVT(buf); err != nil {
			return nil, err
		}
		return mem.BufferSlice{mem.SliceBuffer(buf)}, nil
	}
	pool := mem.DefaultBufferPool()
	buf := pool.Get(size)
	if _, err := m.MarshalToSizedBufferVT((*buf)[:size]); err != nil {
		pool.Put(buf)
		return nil, err
	}
	return mem.BufferSlice{mem.NewBuffer(buf, pool)}, nil
}

// Unmarshal decodes data into v. Input the VT decoder refuses goes to
// protobuf, which decides it: protobuf skips a known field sent with another
// wire type as unknown, where the VT decoder fails.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(vtMessage)
	if !ok {
		return standard().Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	if err := m.UnmarshalVT(b); err != nil {
		pm, ok := v.(proto.Message)
		if !ok {
			return err
		}
		proto.Reset(pm)
		return proto.Unmarshal(b, pm)
	}
	return nil
}
