package gateway_test

import (
	"testing"

	"github.com/grpcplay/grpcplay/gateway"
)

// protojson picks its spaces per build; the gateway's replies must not, so
// that the sizes quoted in docs/ and the bench hold for every build. Each
// reply ends its line, so that a shell's prompt after curl starts on a line
// of its own.
func TestRepliesAreCompactJSON(t *testing.T) {
	r := start(t, gateway.Config{})
	for path, want := range map[string]string{
		"/v1/hello?name=Gonzalo": `{"message":"Hello Gonzalo!"}`,
		"/v1/items?length=2":     `{"items":[{"id":1,"name":"name 1"},{"id":2,"name":"name 2"}]}`,
		"/v1/items?length=0":     `{"items":[]}`,
		"/v1/items?length=-1":    `{"code":3,"message":"length -1 is out of range: it must be between 0 and 100000","details":[]}`,
	} {
		if _, body := r.get(path); string(body) != want+"\n" {
			t.Errorf("GET %s = %q, want %q", path, body, want+"\n")
		}
	}
}
