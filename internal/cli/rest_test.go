package cli_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/grpcplay/grpcplay/internal/cli"
)

func TestServeAnswersRESTFromTheSameBackend(t *testing.T) {
	m := startServe(t, nil, "--max-items", "5")
	code, body := get(t, m.RESTURL()+"/v1/items?length=2")
	if code != http.StatusOK || strings.ReplaceAll(body, " ", "") != `{"items":[{"id":1,"name":"name1"},{"id":2,"name":"name2"}]}` {
		t.Errorf("GET /v1/items?length=2 = %d %s", code, body)
	}
	// The gateway shares the backend's limits: it is the same Service.
	if code, body := get(t, m.RESTURL()+"/v1/items?length=6"); code != http.StatusBadRequest || !strings.Contains(body, "between 0 and 5") {
		t.Errorf("GET /v1/items?length=6 = %d %s; want 400 naming the backend's limit", code, body)
	}
}

func TestRESTAddrFromTheEnvironmentAndOff(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		args []string
		on   bool
	}{
		{"env", map[string]string{"GRPCPLAY_REST_ADDR": "127.0.0.1:0"}, nil, true},
		{"flag empty", nil, []string{"--rest-addr", ""}, false},
		{"an empty flag wins over the env", map[string]string{"GRPCPLAY_REST_ADDR": "127.0.0.1:0"}, []string{"--rest-addr="}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := cli.NewMain(io.Discard, io.Discard, env(tc.env))
			args := append([]string{"backend", "--grpc-addr", "127.0.0.1:0"}, tc.args...)
			if err := m.ParseFlags(args); err != nil {
				t.Fatal(err)
			}
			if err := m.Run(t.Context()); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := m.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			if on := m.RESTURL() != ""; on != tc.on {
				t.Fatalf("REST on = %v, want %v", on, tc.on)
			}
			if tc.on {
				if code, body := get(t, m.RESTURL()+"/v1/hello?name=REST"); code != http.StatusOK || !strings.Contains(body, "Hello REST!") {
					t.Errorf("GET /v1/hello = %d %s", code, body)
				}
			}
		})
	}
}
