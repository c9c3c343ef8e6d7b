package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
)

// A stream's line is the one grpc-gateway's own streams write, byte for
// byte, even for names that encoding/json escapes.
func TestResultLineIsGRPCGatewaysOwn(t *testing.T) {
	_, m := runtime.MarshalerForRequest(runtime.NewServeMux(), httptest.NewRequest(http.MethodGet, "/", nil))
	o := &ndjsonStream{marshaler: m}
	items := []*api.Item{
		backend.NewItem(1), backend.NewItem(2147483647), {},
		{Id: -5, Name: `<b>"quoted" & \ back/slash</b>`},
		{Id: 7, Name: "line\nbreak\ttab \u2028\u2029 名前 🙂 \x00"},
	}
	for _, item := range items {
		want, err := m.Marshal(map[string]any{"result": item}) // as ForwardResponseStream does
		if err != nil {
			t.Fatal(err)
		}
		got, err := o.resultLine(item)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, append(want, '\n')) {
			t.Errorf("item %v:\n got %s\nwant %s", item, got, want)
		}
	}
}

func BenchmarkResultLine(b *testing.B) {
	_, m := runtime.MarshalerForRequest(runtime.NewServeMux(), httptest.NewRequest(http.MethodGet, "/", nil))
	item := backend.NewItem(123456)
	b.Run("by hand", func(b *testing.B) {
		o := &ndjsonStream{marshaler: m}
		for b.Loop() {
			if _, err := o.resultLine(item); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("grpc-gateway's map", func(b *testing.B) {
		for b.Loop() {
			if _, err := m.Marshal(map[string]proto.Message{"result": item}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
