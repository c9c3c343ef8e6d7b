package api

import (
	"errors"
	"unicode/utf8"

	"google.golang.org/grpc/encoding"
	gproto "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/proto"
)

// Codec is the gRPC codec that grpcplay's backend and client install
// explicitly (grpc.ForceServerCodecV2, grpc.ForceCodecV2). It writes the same
// bytes as proto.Marshal, but through the MarshalVT/UnmarshalVT methods that
// protoc-gen-go-vtproto generates, which skip protobuf's reflection, into
// buffers from gRPC's pool. Messages of other services on the same server
// (health, reflection) go to gRPC's standard proto codec.
//
// Its name is "proto", so calls carry the standard content-type
// application/grpc+proto and any gRPC peer, such as the post's Python code,
// still understands them.
type Codec struct{}

// Name is the content-subtype: the standard protobuf one.
func (Codec) Name() string { return gproto.Name }

// vtMessage is what protoc-gen-go-vtproto generates for every message here.
type vtMessage interface {
	SizeVT() int
	MarshalToSizedBufferVT([]byte) (int, error)
	UnmarshalVT([]byte) error
}

// Encoded is a message already in protobuf wire form. A handler that returns
// or sends one skips encoding; Codec passes Data through as it is and gRPC
// frees it once written. It exists for replies that are cheaper to keep or to
// encode directly than to build as structs (see backend's fast paths); only a
// server that installed Codec can send one.
type Encoded struct {
	Data mem.BufferSlice
}

// errInvalidUTF8 matches what proto.Marshal and proto.Unmarshal refuse:
// proto3 strings must be UTF-8, and the generated VT methods do not check.
var errInvalidUTF8 = errors.New("string field contains invalid UTF-8")

func standardCodec() encoding.CodecV2 { return encoding.GetCodecV2(gproto.Name) }

// Marshal encodes v.
func (Codec) Marshal(v any) (mem.BufferSlice, error) {
	switch m := v.(type) {
	case *Encoded:
		return m.Data, nil
	case vtMessage:
		if !validUTF8(v) {
			return nil, errInvalidUTF8
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
	return standardCodec().Marshal(v)
}

// Unmarshal decodes data into v, which gRPC always passes freshly made.
func (Codec) Unmarshal(data mem.BufferSlice, v any) error {
	m, ok := v.(vtMessage)
	if !ok {
		return standardCodec().Unmarshal(data, v)
	}
	buf := data.MaterializeToBuffer(mem.DefaultBufferPool())
	defer buf.Free()
	b := buf.ReadOnlyData()
	if mayHoldOverlongVarint(b) || m.UnmarshalVT(b) != nil || !validUTF8(v) || hasUnknownFields(v) {
		// The generated code refuses some input that protobuf accepts (a
		// known field number with another wire type is an unknown field to
		// protobuf), accepts some that it refuses (malformed groups among
		// unknown fields, varints over 64 bits) and does not check UTF-8.
		// Protobuf decides every input that is not plainly our own
		// messages, so odd input gets exactly the standard answer.
		pm := v.(proto.Message)
		proto.Reset(pm)
		return proto.Unmarshal(b, pm)
	}
	return nil
}

func validUTF8(v any) bool {
	switch m := v.(type) {
	case *HelloRequest:
		return utf8.ValidString(m.GetName())
	case *Hello:
		return utf8.ValidString(m.GetMessage())
	case *Item:
		return utf8.ValidString(m.GetName())
	case *Items:
		for _, item := range m.GetItems() {
			if !utf8.ValidString(item.GetName()) {
				return false
			}
		}
	}
	return true
}

func hasUnknownFields(v any) bool {
	switch m := v.(type) {
	case *HelloRequest:
		return len(m.unknownFields) > 0
	case *Hello:
		return len(m.unknownFields) > 0
	case *ApiRequest:
		return len(m.unknownFields) > 0
	case *Item:
		return len(m.unknownFields) > 0
	case *Items:
		if len(m.unknownFields) > 0 {
			return true
		}
		for _, item := range m.Items {
			if item != nil && len(item.unknownFields) > 0 {
				return true
			}
		}
	}
	return false
}

// mayHoldOverlongVarint reports a run of nine or more bytes with the high bit
// set: the only place a varint longer than protobuf allows can hide. Our own
// messages never have one (ids are positive, names ASCII); text with many
// multi-byte characters may, and merely takes the slower path.
func mayHoldOverlongVarint(b []byte) bool {
	run := 0
	for _, c := range b {
		if c < 0x80 {
			run = 0
			continue
		}
		if run++; run >= 9 {
			return true
		}
	}
	return false
}
