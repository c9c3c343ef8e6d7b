package bench_test

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/bench"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// tiny is the smallest configuration that still runs every case.
var tiny = bench.Config{
	Full:        true,
	Duration:    100 * time.Millisecond,
	Warmup:      20 * time.Millisecond,
	Lengths:     []int32{1, 10},
	Concurrency: []int{1, 2},
}

// runTiny runs the tiny configuration once for the whole package: it is the
// slowest part of the tests.
var runTiny = sync.OnceValues(func() (*bench.Report, error) {
	return bench.Run(context.Background(), tiny)
})

// tinyDoc is the part of the JSON report the tiny run checks.
type tinyDoc struct {
	InProcess bool       `json:"in_process"`
	Cases     []tinyCase `json:"cases"`
}

// tinyCases names every case of the tiny run.
func tinyCases() map[string]bool {
	want := map[string]bool{}
	for _, conc := range []string{"1", "2"} {
		for _, tr := range bench.Transports {
			want[tr+"/hello c="+conc] = true
			for _, n := range []string{"1", "10"} {
				want[tr+"/items len="+n+" c="+conc] = true
				if !strings.HasSuffix(tr, "-proto") {
					want[tr+"/stream len="+n+" c="+conc] = true
				}
			}
		}
	}
	return want
}

// tinyCase is one case of a tiny run's JSON report.
type tinyCase = struct {
	Name        string  `json:"name"`
	Transport   string  `json:"transport"`
	Method      string  `json:"method"`
	Length      int32   `json:"length"`
	Concurrency int     `json:"concurrency"`
	Calls       int64   `json:"calls"`
	Errors      int64   `json:"errors"`
	FirstError  string  `json:"first_error"`
	CallsPerSec float64 `json:"calls_per_sec"`
	ItemsPerSec float64 `json:"items_per_sec"`
	Latency     struct {
		P50, P90, P99 float64
	} `json:"latency_ms"`
	Body float64 `json:"body_bytes_per_call"`
	Wire float64 `json:"wire_bytes_per_call"`
	CPU  float64 `json:"cpu_us_per_call"`
}

// runTinyJSON runs cfg and decodes its JSON report.
func runTinyJSON(t *testing.T, cfg bench.Config) tinyDoc {
	t.Helper()
	r, err := bench.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if err := r.WriteJSON(&out); err != nil {
		t.Fatal(err)
	}
	var doc tinyDoc
	if err := json.Unmarshal(out.Bytes(), &doc); err != nil {
		t.Fatalf("JSON output does not parse: %v\n%s", err, out.String())
	}
	return doc
}

// enoughCalls says whether a case made calls enough to judge its figures:
// items count as they arrive and calls as they end, so with a few calls
// in flight at the edges of the measured time, a handful would skew them.
func enoughCalls(c tinyCase) bool { return c.Calls >= int64(3*c.Concurrency) }

// remeasure runs again, for longer each time, a case that made too few
// calls to judge (a loaded machine manages few TLS handshakes in 100ms).
func remeasure(t *testing.T, c tinyCase) tinyCase {
	t.Helper()
	cfg := tiny
	cfg.Cases = []string{c.Transport + "/" + c.Method}
	cfg.Concurrency = []int{c.Concurrency}
	if c.Method != "hello" {
		cfg.Lengths = []int32{c.Length}
	}
	for cfg.Duration < 10*time.Second && !enoughCalls(c) && c.Errors == 0 {
		cfg.Duration *= 4
		t.Logf("%s: %d calls in %v; measuring for %v", c.Name, c.Calls, cfg.Duration/4, cfg.Duration)
		doc := runTinyJSON(t, cfg)
		if len(doc.Cases) != 1 || doc.Cases[0].Name != c.Name {
			t.Fatalf("measuring %s again ran %d cases", c.Name, len(doc.Cases))
		}
		c = doc.Cases[0]
	}
	return c
}

func TestTinyRunHasEveryCase(t *testing.T) {
	var progress []bench.Progress
	var mu sync.Mutex
	cfg := tiny
	cfg.Progress = func(p bench.Progress) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, p)
	}
	doc := runTinyJSON(t, cfg)
	if !doc.InProcess {
		t.Error("in_process is false for a run without targets")
	}
	want := tinyCases()
	body := map[string]float64{}
	for _, c := range doc.Cases {
		if !want[c.Name] {
			t.Errorf("unexpected or repeated case %q", c.Name)
		}
		delete(want, c.Name)
		c = remeasure(t, c)
		if c.Calls == 0 || c.Errors != 0 || c.FirstError != "" {
			t.Errorf("%s: %d calls, %d errors (%s)", c.Name, c.Calls, c.Errors, c.FirstError)
		}
		// A busy machine may end no stream within the measured time; its
		// items, which count as they arrive, still do.
		if c.Method == "stream" && c.Calls == 0 {
			if c.ItemsPerSec <= 0 || c.Body <= 0 {
				t.Errorf("%s: no call ended and no item arrived: %+v", c.Name, c)
			}
			continue
		}
		if c.Calls == 0 || c.CallsPerSec <= 0 || c.Latency.P50 <= 0 || c.Latency.P50 > c.Latency.P99 || c.Body <= 0 || c.Wire <= 0 || c.CPU <= 0 {
			t.Errorf("%s: implausible figures %+v", c.Name, c)
		}
		if perCall := c.ItemsPerSec / c.CallsPerSec; enoughCalls(c) && c.Method != "hello" && (perCall < float64(c.Length)/3 || perCall > float64(c.Length)*3) {
			t.Errorf("%s: %v items/s for %v calls/s of %d items", c.Name, c.ItemsPerSec, c.CallsPerSec, c.Length)
		}
		body[c.Transport+"/"+c.Method+"/"+itoa(c.Length)] = c.Body
	}
	for name := range want {
		t.Errorf("case %s is missing", name)
	}
	checkBodies(t, body)

	checkProgress(t, progress, len(doc.Cases))
}

// checkBodies compares the body sizes of getAll(10) across transports.
func checkBodies(t *testing.T, body map[string]float64) {
	t.Helper()
	// The same items cost more bytes as JSON than as protobuf.
	if p, j := body["grpc/items/10"], body["rest/items/10"]; p >= j {
		t.Errorf("getAll(10): protobuf %v bytes, JSON %v bytes", p, j)
	}
	if p, j := body["rest/items/10"], body["rest-close/items/10"]; p != j {
		t.Errorf("getAll(10): the JSON body differs with the connection: %v and %v bytes", p, j)
	}
	if h1, h2 := body["rest/items/10"], body["rest-h2/items/10"]; h1 != h2 {
		t.Errorf("getAll(10): the JSON body differs with HTTP/2: %v and %v bytes", h1, h2)
	}
	// encoding/json writes the gateway's compact protojson, byte for byte.
	if g, p := body["rest/items/10"], body["rest-plain/items/10"]; g != p {
		t.Errorf("getAll(10): the plain face's JSON %v bytes, the gateway's %v", p, g)
	}
	// The REST face's protobuf is gRPC's message without its 5-byte prefix.
	for _, tr := range []string{"rest-proto", "rest-h2-proto"} {
		if g, p := body["grpc/items/10"], body[tr+"/items/10"]; p != g-5 {
			t.Errorf("getAll(10): %s body %v bytes, gRPC's %v", tr, p, g)
		}
	}
}

// checkProgress checks that every case warms up, measures and ends, in order.
func checkProgress(t *testing.T, progress []bench.Progress, cases int) {
	t.Helper()
	done := 0
	for _, p := range progress {
		if p.Total != cases {
			t.Fatalf("progress total %d, want %d", p.Total, cases)
		}
		if p.Phase == bench.PhaseDone {
			done++
			if p.Index != done || p.Result == nil {
				t.Errorf("case %d ended as number %d", done, p.Index)
			}
		}
	}
	if done != cases {
		t.Errorf("%d cases reported done, want %d", done, cases)
	}
}

// TestEveryFaceCallsTheService checks that each transport answered its
// calls by calling the Service, once per call, through its own face's
// handler: a face that answered from a cache, or from another handler,
// would show fewer Service calls, or the wrong path.
func TestEveryFaceCallsTheService(t *testing.T) {
	r, err := runTiny()
	if err != nil {
		t.Fatal(err)
	}
	// A stream cut at the case's end reached the Service but was not
	// answered: at most one a worker, and the previous case's cut
	// streams may reach it late.
	checked, wrong := r.SameWork(int64(2 * slices.Max(tiny.Concurrency)))
	if checked != len(r.Cases) || len(wrong) > 0 {
		t.Errorf("%d of %d cases checked; wrong: %s", checked, len(r.Cases), strings.Join(wrong, "\n"))
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("Same work: in all %d cases", len(r.Cases)); !strings.Contains(table.String(), want) {
		t.Errorf("the table does not say %q", want)
	}
}

func itoa(n int32) string { return strconv.Itoa(int(n)) }

func TestTableAndSVG(t *testing.T) {
	r, err := runTiny()
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	if err := r.WriteTable(&table); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(table.String(), "\n")
	if !strings.Contains(lines[0], "CALLS/S") || !strings.Contains(lines[0], "P99") {
		t.Errorf("table header %q", lines[0])
	}
	for i, l := range lines {
		if n := utf8.RuneCountInString(l); n > 100 {
			t.Errorf("line %d is %d columns wide:\n%s", i+1, n, l)
		}
	}
	for _, want := range []string{"getAll(10), 2 concurrent\ngrpc ", "\nrest-plain ", "getStream(1), 1 concurrent\ngrpc ",
		"rest-proto/stream not run: the REST face streams NDJSON only", "Summary: gRPC answered getAll(10) at 2 concurrent"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, table.String())
		}
	}

	var svg bytes.Buffer
	if err := r.WriteSVG(&svg); err != nil {
		t.Fatal(err)
	}
	bars, root := svgBars(t, &svg)
	if root != "http://www.w3.org/2000/svg svg" {
		t.Errorf("root element %q", root)
	}
	if len(bars) != len(r.Cases) {
		t.Errorf("%d bars for %d cases", len(bars), len(r.Cases))
	}
	for _, c := range r.Cases {
		if !bars[c.Name] {
			t.Errorf("no bar for %s", c.Name)
		}
	}
}

// svgBars parses the chart, checks it has no style or script, and returns
// its bars by case and its root element.
func svgBars(t *testing.T, svg io.Reader) (map[string]bool, string) {
	t.Helper()
	bars := map[string]bool{}
	dec := xml.NewDecoder(svg)
	dec.Strict = true
	var root string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v", err)
		}
		el, ok := tok.(xml.StartElement)
		if !ok {
			continue
		}
		if root == "" {
			root = el.Name.Space + " " + el.Name.Local
		}
		if el.Name.Local == "style" || el.Name.Local == "script" {
			t.Errorf("SVG has a <%s> element, which a strict CSP blocks", el.Name.Local)
		}
		attrs := map[string]string{}
		for _, a := range el.Attr {
			attrs[a.Name.Local] = a.Value
			if a.Name.Local == "style" {
				t.Errorf("SVG has a style attribute, which a strict CSP blocks")
			}
		}
		if el.Name.Local == "rect" && attrs["class"] == "bar" {
			if bars[attrs["data-case"]] {
				t.Errorf("two bars for %s", attrs["data-case"])
			}
			bars[attrs["data-case"]] = true
		}
	}
	return bars, root
}

func TestAgainstARunningBackend(t *testing.T) {
	b := backendtest.Start(t, backend.Config{})
	cfg := tiny
	cfg.Target = b.Addr
	cfg.Cases = []string{"grpc/items"}
	cfg.Concurrency = []int{3}
	r, err := bench.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.InProcess || len(r.Cases) != 2 {
		t.Fatalf("in-process %v, %d cases", r.InProcess, len(r.Cases))
	}
	for _, c := range r.Cases {
		if c.Calls == 0 || c.Errors != 0 {
			t.Errorf("%s: %d calls, %d errors (%s)", c.Name, c.Calls, c.Errors, c.FirstError)
		}
	}
	// A backend that refuses the length: every call is an error, said once.
	cfg.Lengths = []int32{100_001}
	r, err = bench.Run(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c := r.Cases[0]; c.Calls != 0 || c.Errors == 0 || !strings.Contains(c.FirstError, "out of range") {
		t.Errorf("over the limit: %d calls, %d errors, first error %q", c.Calls, c.Errors, c.FirstError)
	}
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	cfg := tiny
	cfg.Duration = time.Minute
	cfg.Cases = []string{"grpc/stream"}
	cfg.Progress = func(p bench.Progress) {
		if p.Phase == bench.PhaseMeasure && p.Calls > 0 {
			cancel()
		}
	}
	start := time.Now()
	_, err := bench.Run(ctx, cfg)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err %v, want context.Canceled", err)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("took %v to stop", d)
	}
}

func TestConfigErrors(t *testing.T) {
	tests := []struct {
		cfg  bench.Config
		want string
	}{
		{bench.Config{Duration: -time.Second}, "duration"},
		{bench.Config{Duration: time.Hour}, "duration"},
		{bench.Config{Warmup: -time.Second}, "warm-up"},
		{bench.Config{Lengths: []int32{0}}, "length 0"},
		{bench.Config{Concurrency: []int{0}}, "concurrency 0"},
		{bench.Config{Concurrency: []int{5000}}, "concurrency 5000"},
		{bench.Config{Cases: []string{"soap"}}, `case "soap" matches nothing`},
		{bench.Config{Cases: []string{"grpc/soap"}}, `case "grpc/soap"`},
		{bench.Config{Target: "localhost:50051"}, "--rest-target"},
		{bench.Config{RESTTarget: "http://localhost:8080"}, "--target"},
		{bench.Config{Target: "x:1", RESTTarget: "localhost:8080"}, "must be a URL"},
		{bench.Config{ServerPID: 1}, "server PID"},
	}
	for _, tt := range tests {
		err := tt.cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: error %v, want one that says %q", tt.cfg, err, tt.want)
		}
	}
	if err := (bench.Config{Target: "x:1", Cases: []string{"grpc"}}).Validate(); err != nil {
		t.Errorf("gRPC cases against a target alone: %v", err)
	}
	if err := (bench.Config{}).Validate(); err != nil {
		t.Errorf("defaults: %v", err)
	}
}
