package gateway_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/api/apigw"
	"github.com/grpcplay/grpcplay/backend"
)

// What a REST call costs the process when grpc-gateway calls the service
// in-process (the gateway's choice) and when it calls it over a gRPC
// connection to the backend's port, the other registration grpc-gateway
// documents. Both muxes are grpc-gateway's defaults, so that the difference
// is the hop: a gRPC client call, HTTP/2 over loopback, and the backend's
// interceptors. cpu-µs/call is the process's user and system time per call,
// client included; docs/api.md quotes it.
//
//	go test -run '^$' -bench RESTHop -count 5 ./gateway
func BenchmarkRESTHop(b *testing.B) {
	srv := backend.New(backend.DefaultConfig)
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-served
	})
	conn, err := grpc.NewClient(lis.Addr().String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { conn.Close() })

	inProcess, overGRPC := runtime.NewServeMux(), runtime.NewServeMux()
	if err := apigw.RegisterApiHandlerServer(context.Background(), inProcess, srv.Service()); err != nil {
		b.Fatal(err)
	}
	if err := apigw.RegisterApiHandlerClient(context.Background(), overGRPC, api.NewApiClient(conn)); err != nil {
		b.Fatal(err)
	}
	for _, path := range []string{"/v1/hello?name=Gonzalo", "/v1/items?length=10", "/v1/items?length=1000"} {
		for _, face := range []struct {
			name string
			mux  http.Handler
		}{{"in-process", inProcess}, {"over-grpc", overGRPC}} {
			b.Run(fmt.Sprintf("%s/%s", path, face.name), func(b *testing.B) {
				web := httptest.NewServer(face.mux)
				defer web.Close()
				client := web.Client()
				start := cpuTime()
				for b.Loop() {
					resp, err := client.Get(web.URL + path)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := io.Copy(io.Discard, resp.Body); err != nil {
						b.Fatal(err)
					}
					resp.Body.Close()
					if resp.StatusCode != http.StatusOK {
						b.Fatalf("GET %s: %s", path, resp.Status)
					}
				}
				b.ReportMetric(float64((cpuTime()-start).Microseconds())/float64(b.N), "cpu-µs/call")
			})
		}
	}
}

// cpuTime is the user and system time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
