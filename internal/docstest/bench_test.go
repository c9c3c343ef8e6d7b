package docstest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

type benchCase struct {
	Transport        string  `json:"transport"`
	Method           string  `json:"method"`
	Length           int     `json:"length"`
	Concurrency      int     `json:"concurrency"`
	CallsPerSec      float64 `json:"calls_per_sec"`
	ItemsPerSec      float64 `json:"items_per_sec"`
	BodyBytes        float64 `json:"body_bytes_per_call"`
	ServerCPUPerCall float64 `json:"server_cpu_us_per_call"`
}

type benchRun struct {
	cases map[[4]any]benchCase
}

// loadBench reads the committed run the README and docs/benchmarks.md
// quote: loopback, from scripts/bench-links.
func loadBench(t *testing.T) benchRun {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo, "docs", "bench-loopback.json"))
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

func (r benchRun) get(t *testing.T, transport, method string, length, concurrency int) benchCase {
	t.Helper()
	c, ok := r.cases[[4]any{transport, method, length, concurrency}]
	if !ok {
		t.Fatalf("bench-loopback.json has no case %s/%s length %d c=%d", transport, method, length, concurrency)
	}
	return c
}

// rate is items/s, or calls/s for sayHello, as the bench's "vs gRPC".
func (r benchRun) rate(t *testing.T, transport, method string, length, concurrency int) float64 {
	t.Helper()
	c := r.get(t, transport, method, length, concurrency)
	if method == "hello" {
		return c.CallsPerSec
	}
	return c.ItemsPerSec
}

// The statements of the README and docs/benchmarks.md hold for the
// committed run, so that a new run which contradicts them fails here until
// the text says what it found.
func TestBenchmarksTextMatchesBenchJSON(t *testing.T) {
	r := loadBench(t)
	for key := range r.cases {
		transport, method, length, c := key[0].(string), key[1].(string), key[2].(int), key[3].(int)
		if transport == "rest" && r.rate(t, "grpc", method, length, c) <= r.rate(t, "rest", method, length, c) {
			t.Errorf("%s(%d) c=%d: REST keep-alive at or above gRPC; the text says gRPC answers every case faster", method, length, c)
		}
	}
	for _, c := range []int{1, 50} {
		if rest, grpc := r.rate(t, "rest", "items", 1000, c), r.rate(t, "grpc", "items", 1000, c); rest > grpc/4 {
			t.Errorf("getAll(1000) c=%d: REST/JSON at %.2fx gRPC; the text says several times slower", c, rest/grpc)
		}
		if proto, grpc := r.rate(t, "rest-proto", "items", 1000, c), r.rate(t, "grpc", "items", 1000, c); proto < grpc/1.2 {
			t.Errorf("getAll(1000) c=%d: the REST face's protobuf at %.2fx gRPC; the text says within 1.1x", c, proto/grpc)
		}
		if plain, grpc := r.rate(t, "rest-plain", "items", 1000, c), r.rate(t, "grpc", "items", 1000, c); plain > grpc/2 {
			t.Errorf("getAll(1000) c=%d: plain REST at %.2fx gRPC; the text says gRPC answers 2.5x as fast", c, plain/grpc)
		}
		if plain, gw := r.get(t, "rest-plain", "items", 1000, c).ServerCPUPerCall, r.get(t, "rest", "items", 1000, c).ServerCPUPerCall; plain > gw/2.5 {
			t.Errorf("getAll(1000) c=%d: plain REST's server CPU at %.2fx grpc-gateway's; the text says a quarter to a third", c, plain/gw)
		}
		if h2, h1 := r.rate(t, "rest-h2", "items", 1000, c), r.rate(t, "rest", "items", 1000, c); h2 > h1*1.1 {
			t.Errorf("getAll(1000) c=%d: REST/JSON over HTTP/2 at %.2fx HTTP/1.1; the text says HTTP/2 alone gains nothing here", c, h2/h1)
		}
		if rc, rest := r.rate(t, "rest-close", "hello", 0, c), r.rate(t, "rest", "hello", 0, c); rc > rest {
			t.Errorf("sayHello c=%d: a new connection per call at %.2fx keep-alive; the text says it costs", c, rc/rest)
		}
	}
	if rc, grpc := r.rate(t, "rest-close", "hello", 0, 50), r.rate(t, "grpc", "hello", 0, 50); rc > grpc/3 {
		t.Errorf("sayHello c=50: a new connection per call at %.2fx gRPC; the text says 4x slower", rc/grpc)
	}
	json, proto := r.get(t, "rest", "items", 1000, 1).BodyBytes, r.get(t, "grpc", "items", 1000, 1).BodyBytes
	if ratio := json / proto; ratio < 1.5 || ratio > 2.5 {
		t.Errorf("getAll(1000): JSON is %.2fx the protobuf bytes; the text says about twice", ratio)
	}
	for _, c := range []int{1, 50} {
		if rest, grpc := r.rate(t, "rest", "stream", 1000, c), r.rate(t, "grpc", "stream", 1000, c); rest > grpc/1.5 {
			t.Errorf("getStream(1000) c=%d: grpc-gateway's NDJSON at %.2fx gRPC; the text says about half", c, rest/grpc)
		}
	}
	if plain, grpc := r.rate(t, "rest-plain", "stream", 1000, 1), r.rate(t, "grpc", "stream", 1000, 1); plain < grpc {
		t.Errorf("getStream(1000) c=1: plain NDJSON at %.2fx gRPC; the text says it leads", plain/grpc)
	}
}
