package gateway_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	spb "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/gateway"
)

// Whatever the path, query and Grpc-Timeout, the gateway answers with JSON:
// a result, or an error under 500 whose body is a google.rpc.Status. A 5xx
// would be the server's fault; only a deadline (504) is not.
//
//	go test -run '^$' -fuzz FuzzRequests ./gateway
func FuzzRequests(f *testing.F) {
	for _, seed := range []struct{ path, query, timeout string }{
		{"/v1/hello", "name=Gonzalo", ""},
		{"/v1/hello", "name=%FF", ""},
		{"/v1/hello", "name=\xff", ""},
		{"/v1/items", "length=3", "1S"},
		{"/v1/items", "length=-1", ""},
		{"/v1/items", "length=ten", ""},
		{"/v1/items", "length=1&length=2", ""},
		{"/v1/items", "length=%ZZ", ""},
		{"/v1/items", "lenght=3", ""},
		{"/v1/stream", "length=2&bogus", ""},
		{"/v1/hello", "name.x[y]=1", ""},
		{"/v1/stream", "length=4", "100m"},
		{"/v1/stream", "length=99999999999", ""},
		{"/v1/stream", "length=10", "1n"},
		{"/v1/openapi.json", "", ""},
		{"/v1/nope", "", "soon"},
		{"/", "", ""},
	} {
		f.Add(seed.path, seed.query, seed.timeout)
	}
	srv := gateway.New(gateway.Config{}, backend.NewService(backend.Limits{MaxItems: 100, MaxStreamItems: 100, MaxNameBytes: 64}))
	f.Fuzz(func(t *testing.T, path, query, timeout string) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path+query, " #\r\n") {
			return // not a request line a client could send
		}
		req, err := http.NewRequest(http.MethodGet, "http://gateway"+path+"?"+query, nil)
		if err != nil {
			return
		}
		if timeout != "" {
			req.Header.Set("Grpc-Timeout", timeout)
		}
		rec := httptest.NewRecorder()
		srv.Handler().ServeHTTP(rec, req)
		code := rec.Code
		if code >= 500 && code != http.StatusGatewayTimeout {
			t.Fatalf("GET %s?%s (Grpc-Timeout %q): %d %s", path, query, timeout, code, rec.Body)
		}
		if code == http.StatusOK {
			return
		}
		var st spb.Status
		if err := protojson.Unmarshal(rec.Body.Bytes(), &st); err != nil || st.GetMessage() == "" {
			t.Fatalf("GET %s?%s: %d with a body that is not a Status with a message: %q (%v)", path, query, code, rec.Body, err)
		}
	})
}
