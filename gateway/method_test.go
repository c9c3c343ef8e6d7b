package gateway_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/grpcplay/grpcplay/gateway"
)

// Any method but GET is refused before a handler runs, whatever its body:
// grpc-gateway's handlers would read a urlencoded POST, PUT or PATCH body
// as if it were the query, past the checks that read only the URL.
func TestOnlyGetReachesAHandler(t *testing.T) {
	r := start(t, gateway.Config{})
	bodies := map[string]string{
		"/v1/hello":  "name=%ff",
		"/v1/items":  "length=100000",
		"/v1/stream": "length=10000000",
		"/v1/nope":   "x=1",
	}
	methods := []string{"POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS", "TRACE", "BREW"}
	for path, body := range bodies {
		for _, method := range methods {
			req, err := http.NewRequest(method, r.base+path, strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			resp, err := r.http.Do(req)
			if err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
			got, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "GET" {
				t.Errorf("%s %s: %d, Allow %q (%.100s); want 405 and Allow: GET", method, path, resp.StatusCode, resp.Header.Get("Allow"), got)
			}
			if method != "HEAD" && !strings.Contains(string(got), "use GET") {
				t.Errorf("%s %s: body %.200q does not say to use GET", method, path, got)
			}
		}
	}
	select {
	case d := <-r.svc.deadlines:
		t.Fatalf("a call ran (deadline %v) for a request that was refused", d)
	default:
	}
}

// A GET's body is never read: its parameters are the query's alone, where
// the UTF-8 check and the item budget see them.
func TestGetBodyIsIgnored(t *testing.T) {
	r := start(t, gateway.Config{})
	req, err := http.NewRequest(http.MethodGet, r.base+"/v1/hello?name=ok", strings.NewReader("name=%ff"))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	resp, err := r.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "Hello ok!") {
		t.Fatalf("GET with a form body: %d %.200q; want 200 for the query's name", resp.StatusCode, body)
	}
}

// Every reply, an error or a stream too, tells browsers not to sniff it:
// replies echo the caller's input.
func TestRepliesAreNotSniffed(t *testing.T) {
	r := start(t, gateway.Config{})
	for _, path := range []string{
		"/v1/hello?name=%3Cscript%3E", "/v1/items?length=2", "/v1/stream?length=2",
		"/v1/items?length=-1", "/v1/nope", "/v1/openapi.json",
	} {
		resp, _ := r.get(path)
		if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
			t.Errorf("GET %s (%d): X-Content-Type-Options %q, want nosniff", path, resp.StatusCode, got)
		}
	}
	resp := r.do(t.Context(), http.MethodPost, "/v1/hello")
	resp.Body.Close()
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("POST (%d): X-Content-Type-Options %q, want nosniff", resp.StatusCode, got)
	}
}
