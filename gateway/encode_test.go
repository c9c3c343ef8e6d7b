package gateway

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	spb "google.golang.org/genproto/googleapis/rpc/status"
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

// Protobuf replies are encoded by vtprotobuf, as the gRPC face's are, and
// are the bytes protobuf itself writes; errors, which have no VT methods,
// still encode.
func TestProtobufRepliesUseVT(t *testing.T) {
	m := &vtProtoMarshaller{}
	items := &api.Items{Items: []*api.Item{backend.NewItem(1), backend.NewItem(2)}}
	got, err := m.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	vt, err := items.MarshalVT()
	if err != nil {
		t.Fatal(err)
	}
	want, err := proto.Marshal(items)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, vt) || !bytes.Equal(got, want) {
		t.Errorf("Marshal = %x, MarshalVT %x, proto.Marshal %x", got, vt, want)
	}
	if got, _ := m.Marshal(markedVT{items}); string(got) != "MarshalVT" {
		t.Errorf("Marshal of a message with MarshalVT wrote %q, not MarshalVT's bytes", got)
	}
	if _, err := m.Marshal(&spb.Status{Code: 3, Message: "bad"}); err != nil {
		t.Errorf("Marshal of an error: %v", err)
	}
}

// markedVT is a message whose MarshalVT is recognisable.
type markedVT struct{ *api.Items }

func (markedVT) MarshalVT() ([]byte, error) { return []byte("MarshalVT"), nil }
