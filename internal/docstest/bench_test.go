package docstest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type benchCase struct {
	Transport   string  `json:"transport"`
	Method      string  `json:"method"`
	Length      int     `json:"length"`
	Concurrency int     `json:"concurrency"`
	CallsPerSec float64 `json:"calls_per_sec"`
	ItemsPerSec float64 `json:"items_per_sec"`
	BodyBytes   float64 `json:"body_bytes_per_call"`
}

type benchRun struct {
	cases map[[4]any]benchCase
}

func loadBench(t *testing.T) benchRun {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "docs", "bench.json"))
	if err != nil {
		t.Fatal(err)
	}
	var file struct{ Cases []benchCase }
	if err := json.Unmarshal(data, &file); err != nil {
		t.Fatal(err)
	}
	r := benchRun{cases: map[[4]any]benchCase{}}
	for _, c := range file.Cases {
		r.cases[[4]any{c.Transport, c.Method, c.Length, c.Concurrency}] = c
	}
	return r
}

// rate is items/s, or calls/s for sayHello, as the bench's "vs gRPC".
func (r benchRun) rate(t *testing.T, transport, method string, length, concurrency int) float64 {
	t.Helper()
	c, ok := r.cases[[4]any{transport, method, length, concurrency}]
	if !ok {
		t.Fatalf("bench.json has no case %s/%s length %d c=%d", transport, method, length, concurrency)
	}
	if method == "hello" {
		return c.CallsPerSec
	}
	return c.ItemsPerSec
}

// The statements of docs/benchmarks.md and the README hold for the
// committed run, so that a new run which contradicts them fails here until
// the text says what it found.
func TestBenchmarksTextMatchesBenchJSON(t *testing.T) {
	r := loadBench(t)
	wins, all := 0, 0
	for key := range r.cases {
		transport, method, length, c := key[0].(string), key[1].(string), key[2].(int), key[3].(int)
		if transport == "rest" {
			all++
			if r.rate(t, "grpc", method, length, c) > r.rate(t, "rest", method, length, c) {
				wins++
			}
		}
	}
	if 2*wins <= all {
		t.Errorf("gRPC beats REST keep-alive in %d of %d cases; the text says most", wins, all)
	}
	for _, c := range []int{1, 50} {
		if rc, grpc := r.rate(t, "rest-close", "hello", 0, c), r.rate(t, "grpc", "hello", 0, c); rc > grpc/2 {
			t.Errorf("sayHello c=%d: REST with a new connection per call at %.2fx gRPC; the text says it loses badly", c, rc/grpc)
		}
		if rc, rest := r.rate(t, "rest-close", "hello", 0, c), r.rate(t, "rest", "hello", 0, c); rc > rest/2 {
			t.Errorf("sayHello c=%d: REST with a new connection per call at %.2fx REST keep-alive; the text says keep-alive loses far less", c, rc/rest)
		}
		for _, n := range []int{1000, 100000} {
			if rest, grpc := r.rate(t, "rest", "items", n, c), r.rate(t, "grpc", "items", n, c); rest > grpc/2 {
				t.Errorf("getAll(%d) c=%d: REST at %.2fx gRPC; the text says large replies make REST several times slower", n, c, rest/grpc)
			}
			if all, stream := r.rate(t, "grpc", "items", n, c), r.rate(t, "grpc", "stream", n, c); all < 2*stream {
				t.Errorf("gRPC getAll(%d) c=%d moves %.2fx the items of getStream; the text says several times", n, c, all/stream)
			}
		}
	}
	for _, n := range []int{10, 1000, 100000} {
		json, proto := r.cases[[4]any{"rest", "items", n, 1}].BodyBytes, r.cases[[4]any{"grpc", "items", n, 1}].BodyBytes
		if ratio := json / proto; ratio < 1.5 || ratio > 2.5 {
			t.Errorf("getAll(%d): JSON is %.2fx the protobuf bytes; the text says about twice", n, ratio)
		}
	}
	tied := false
	for _, n := range []int{1000, 100000} {
		for _, transport := range []string{"rest", "rest-close"} {
			tied = tied || r.rate(t, transport, "stream", n, 50) >= 0.8*r.rate(t, "grpc", "stream", n, 50)
		}
	}
	if !tied {
		t.Error("no long stream at c=50 where REST comes within 0.8x of gRPC; the text says streams are where REST ties or wins")
	}
}
