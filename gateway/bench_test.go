package gateway_test

import (
	"context"
	"fmt"
	"io"
	"testing"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/gateway"
)

// The same Service, the same request, over loopback: gRPC against the REST
// face, keep-alive on both. Each REST answer is decoded, as a client would.
// grpcplay bench measures this at scale; these are for profiling the gateway:
//
//	go test -run '^$' -bench . -benchmem ./gateway
func BenchmarkGetAll(b *testing.B) {
	r := start(b, gateway.Config{})
	for _, n := range []int32{1, 10, 1000} {
		b.Run(fmt.Sprintf("length=%d/grpc", n), func(b *testing.B) {
			for b.Loop() {
				if _, err := r.grpc.GetAll(context.Background(), &api.ApiRequest{Length: n}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("length=%d/rest", n), func(b *testing.B) {
			path := fmt.Sprintf("/v1/items?length=%d", n)
			for b.Loop() {
				_, body := r.get(path)
				var items api.Items
				decode(b, body, &items)
			}
		})
	}
}

func BenchmarkGetStream(b *testing.B) {
	r := start(b, gateway.Config{})
	const n = 1000
	b.Run(fmt.Sprintf("length=%d/grpc", n), func(b *testing.B) {
		for b.Loop() {
			stream, err := r.grpc.GetStream(context.Background(), &api.ApiRequest{Length: n})
			if err != nil {
				b.Fatal(err)
			}
			for {
				if _, err := stream.Recv(); err == io.EOF {
					break
				} else if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run(fmt.Sprintf("length=%d/rest", n), func(b *testing.B) {
		path := fmt.Sprintf("/v1/stream?length=%d", n)
		for b.Loop() {
			resp := r.open(context.Background(), path)
			res := readResults(b, resp.Body)
			resp.Body.Close()
			if len(res.items) != n {
				b.Fatalf("%d items", len(res.items))
			}
		}
	})
}
