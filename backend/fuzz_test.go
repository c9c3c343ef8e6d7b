package backend_test

import (
	"context"
	"strings"
	"testing"
	"unicode/utf8"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
)

// fuzzLimits are small, so that each input runs in microseconds and the
// fuzzer reaches both sides of every limit.
var fuzzLimits = backend.Limits{MaxItems: 1000, MaxStreamItems: 2000, MaxNameBytes: 64}

// FuzzService checks the service's validation on any length and name: the
// answer is InvalidArgument with a message, exactly when the input is out of
// its limits or the name is not UTF-8, or else exactly the post's answer.
// Never a panic, another code, or a wrong item. Its seeds are in testdata/fuzz/FuzzService.
func FuzzService(f *testing.F) {
	svc := backend.NewService(fuzzLimits)
	f.Fuzz(func(t *testing.T, length int32, name string) {
		ctx := context.Background()

		hello, err := svc.SayHello(ctx, &api.HelloRequest{Name: name})
		if len(name) > fuzzLimits.MaxNameBytes || !utf8.ValidString(name) {
			wantInvalid(t, err, "name")
		} else if err != nil || hello.GetMessage() != "Hello "+name+"!" {
			t.Fatalf("sayHello(%q) = %q, %v", name, hello.GetMessage(), err)
		}

		all, err := svc.GetAll(ctx, &api.ApiRequest{Length: length})
		if length < 0 || length > fuzzLimits.MaxItems {
			wantInvalid(t, err, "length")
		} else {
			if err != nil {
				t.Fatalf("getAll(%d): %v", length, err)
			}
			wantItems(t, all.GetItems(), int(length))
		}

		stream := &collectingStream{ctx: ctx}
		err = svc.GetStream(&api.ApiRequest{Length: length}, stream)
		if length < 0 || length > fuzzLimits.MaxStreamItems {
			wantInvalid(t, err, "length")
			if len(stream.items) != 0 {
				t.Fatalf("getStream(%d) sent %d items before refusing", length, len(stream.items))
			}
		} else {
			if err != nil {
				t.Fatalf("getStream(%d): %v", length, err)
			}
			wantItems(t, stream.items, int(length))
		}
	})
}

func wantInvalid(t *testing.T, err error, about string) {
	t.Helper()
	if status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), about) {
		t.Fatalf("got %v; want InvalidArgument with a message about the %s", err, about)
	}
}

// collectingStream is the server side of a stream, in memory.
type collectingStream struct {
	grpc.ServerStreamingServer[api.Item]
	ctx   context.Context
	items []*api.Item
}

func (s *collectingStream) Context() context.Context { return s.ctx }

func (s *collectingStream) Send(item *api.Item) error {
	s.items = append(s.items, item)
	return nil
}
