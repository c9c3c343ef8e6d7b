package main

import (
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func startFloorPage(t *testing.T, target string) string {
	t.Helper()
	conn, err := grpc.NewClient(target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	srv := httptest.NewServer(newFloorPage(api.NewApiClient(conn)))
	t.Cleanup(srv.Close)
	return srv.URL
}

var listItem = regexp.MustCompile(`<li>(\d+) - ([^<]*)</li>`)

// The floor page shows what the Flask page shows: the greeting, getAll(10)
// and getStream(5), in order.
func TestFloorPageShowsTheFlaskPagesCalls(t *testing.T) {
	url := startFloorPage(t, backendtest.Start(t, backend.Config{}).Addr)
	resp, body := testkit.Get(t, url+"/")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	if got := resp.Header.Get("Content-Type"); got != "text/html; charset=utf-8" {
		t.Errorf("Content-Type %q", got)
	}
	if !strings.Contains(body, "<h1>Hello Gonzalo!</h1>") {
		t.Errorf("no greeting in:\n%s", body)
	}
	allAt, streamAt := strings.Index(body, "getAll:"), strings.Index(body, "getStream:")
	if allAt < 0 || streamAt < allAt {
		t.Fatalf("sections missing or out of order:\n%s", body)
	}
	checkIDs(t, "getAll", body[allAt:streamAt], 10)
	checkIDs(t, "getStream", body[streamAt:], 5)
}

func checkIDs(t *testing.T, call, section string, want int) {
	t.Helper()
	items := listItem.FindAllStringSubmatch(section, -1)
	if len(items) != want {
		t.Fatalf("%s: %d items, want %d:\n%s", call, len(items), want, section)
	}
	for i, item := range items {
		if got := item[1]; got != strconv.Itoa(i+1) || item[2] == "" {
			t.Errorf("%s item %d: id %s, name %q", call, i, got, item[2])
		}
	}
}

// With no backend, the page says which call failed, as a 502.
func TestFloorPageWithoutBackendIsABadGateway(t *testing.T) {
	url := startFloorPage(t, testkit.FreeAddr(t))
	resp, body := testkit.Get(t, url+"/")
	if resp.StatusCode != http.StatusBadGateway || !strings.Contains(body, "sayHello") {
		t.Fatalf("status %d, body %q; want 502 naming sayHello", resp.StatusCode, body)
	}
}
