package gateway

import (
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/grpc-ecosystem/grpc-gateway/v2/utilities"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
)

// strictQuery is grpc-gateway's query parser that refuses a parameter the
// request message has no field for. The default ignores it, so that
// /v1/items?lenght=1000 answered 200 with no items: a silently wrong answer
// to a typo. The generated handlers turn the error into InvalidArgument.
type strictQuery struct{ runtime.DefaultQueryParser }

func (q *strictQuery) Parse(msg proto.Message, values url.Values, filter *utilities.DoubleArray) error {
	fields := msg.ProtoReflect().Descriptor().Fields()
	var unknown []string
	for key := range values {
		// "a.b" and "a[k]" address a field inside a; a names the field.
		name, _, _ := strings.Cut(key, ".")
		name, _, _ = strings.Cut(name, "[")
		if fields.ByTextName(name) == nil && fields.ByJSONName(name) == nil {
			unknown = append(unknown, key)
		}
	}
	if len(unknown) > 0 {
		slices.Sort(unknown) // the same message whatever the map's order
		return fmt.Errorf("unknown query parameter %q; this call takes %s", unknown[0], fieldNames(fields))
	}
	return q.DefaultQueryParser.Parse(msg, values, filter)
}

func fieldNames(fields protoreflect.FieldDescriptors) string {
	if fields.Len() == 0 {
		return "none"
	}
	names := make([]string, fields.Len())
	for i := range names {
		names[i] = string(fields.Get(i).Name())
	}
	return strings.Join(names, ", ")
}

var queryParser = &strictQuery{}

// grpc-gateway keeps its query parser in a package variable, for every
// ServeMux in the process, and SetQueryParameterParser writes it: set it
// once, before any gateway serves, so that no request reads it while it is
// written.
var setQueryParser sync.Once

func useStrictQuery() {
	setQueryParser.Do(func() { runtime.SetQueryParameterParser(queryParser)(nil) })
}
