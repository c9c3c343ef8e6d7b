package gateway

import (
	"bytes"
	"encoding/json"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"
)

// compactJSON is grpc-gateway's default marshaler with its output compacted
// and ended with a newline.
// protojson inserts a space after some colons and commas at random, seeded
// per build, so that nobody depends on its exact bytes; compacting makes a
// reply's bytes, and the sizes the docs and the bench quote, the same for
// every build.
type compactJSON struct {
	runtime.JSONPb
}

func newCompactJSON() runtime.Marshaler {
	return &runtime.HTTPBodyMarshaler{Marshaler: &compactJSON{runtime.JSONPb{
		MarshalOptions:   protojson.MarshalOptions{EmitUnpopulated: true},
		UnmarshalOptions: protojson.UnmarshalOptions{DiscardUnknown: true},
	}}}
}

func (c *compactJSON) Marshal(v any) ([]byte, error) {
	raw, err := c.JSONPb.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.Grow(len(raw) + 1)
	if err := json.Compact(&out, raw); err != nil {
		return nil, err
	}
	// A reply ends its line, as curl's user expects: the shell's prompt
	// then starts on a line of its own.
	out.WriteByte('\n')
	return out.Bytes(), nil
}
