package cli_test

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/bench"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

func TestBenchFlagErrorsAreUsageErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--lengths", "1,x"}, `"x" is not a whole number`},
		{[]string{"--lengths", "0"}, "length 0 must be at least 1"},
		{[]string{"--lengths", "99999999999"}, "is not a whole number"},
		{[]string{"--concurrency", "0"}, "concurrency 0"},
		{[]string{"--cases", "soap"}, `case "soap" matches nothing`},
		{[]string{"-o", "yaml"}, "-o must be text or json"},
		{[]string{"--duration", "0s"}, "--duration must be more than 0"},
		{[]string{"--duration", "-1s"}, "duration -1s"},
		{[]string{"--warmup", "-1s"}, "warm-up -1s"},
		{[]string{"--target", "localhost:50051"}, "--rest-target"},
		{[]string{"--target", "x:1", "--rest-target", "x:2"}, "must be a URL"},
		{[]string{"--server-pid", "1"}, "server PID"},
		{[]string{"--repeat", "0"}, "repeat 0"},
		{[]string{"--committed", "--duration", "1s"}, "a committed run measures each case at least 5s"},
		{[]string{"--committed", "--target", "x:1", "--cases", "grpc"}, "does not go with --target"},
		{[]string{"--bogus"}, "flag provided but not defined: --bogus"},
		{[]string{"extra"}, "bench takes no arguments"},
	}
	for _, tt := range tests {
		code, stdout, stderr := execute(t, nil, append([]string{"bench"}, tt.args...)...)
		if code != 2 || !strings.Contains(stderr, tt.want) || stdout != "" {
			t.Errorf("bench %q: exit %d, stderr %q, stdout %q; want exit 2 and %q", tt.args, code, stderr, stdout, tt.want)
		}
	}
	// An environment variable is a setting like its flag, and as checked.
	code, _, stderr := execute(t, map[string]string{"GRPCPLAY_CONCURRENCY": "1,-3"}, "bench")
	if code != 2 || !strings.Contains(stderr, "concurrency -3") {
		t.Errorf("GRPCPLAY_CONCURRENCY=1,-3: exit %d, %q", code, stderr)
	}
}

func TestBenchWritesJSONAndSVG(t *testing.T) {
	svgPath := filepath.Join(t.TempDir(), "bench.svg")
	code, stdout, stderr := execute(t, nil, "bench", "--duration", "80ms", "--warmup", "10ms",
		"--lengths", "1,10", "--concurrency", "2", "--cases", "items,grpc/hello", "-o", "json", "--svg", svgPath)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	var doc struct {
		Command string `json:"command"`
		Cases   []struct {
			Name   string `json:"name"`
			Calls  int64  `json:"calls"`
			Errors int64  `json:"errors"`
		} `json:"cases"`
	}
	if err := json.Unmarshal([]byte(stdout), &doc); err != nil {
		t.Fatalf("-o json: %v\n%s", err, stdout)
	}
	// A case may end its 80ms before a call does on a busy machine; bench's
	// own tests check every case's figures.
	var names []string
	var calls int64
	for _, c := range doc.Cases {
		names = append(names, c.Name)
		calls += c.Calls
		if c.Errors != 0 {
			t.Errorf("%s: %d calls, %d errors", c.Name, c.Calls, c.Errors)
		}
	}
	if calls == 0 {
		t.Error("no case made a call")
	}
	want := "grpc/hello c=2"
	for _, n := range []string{"1", "10"} {
		for _, tr := range bench.Transports {
			want += " " + tr + "/items len=" + n + " c=2"
		}
	}
	if got := strings.Join(names, " "); got != want {
		t.Errorf("cases\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(doc.Command, "grpcplay bench --cases=items,grpc/hello") || !strings.Contains(doc.Command, "--lengths=1,10") {
		t.Errorf("command %q does not reproduce the run", doc.Command)
	}
	// Progress went to stderr, one finished line per case.
	if n := strings.Count(stderr, " calls/s "); n != len(doc.Cases) {
		t.Errorf("stderr has %d case lines, want %d:\n%s", n, len(doc.Cases), stderr)
	}
	svg, err := os.ReadFile(svgPath)
	if err != nil {
		t.Fatal(err)
	}
	if err := xml.Unmarshal(svg, new(struct{})); err != nil {
		t.Errorf("SVG: %v", err)
	}
	if n := strings.Count(string(svg), `class="bar"`); n != len(doc.Cases) {
		t.Errorf("SVG has %d bars for %d cases", n, len(doc.Cases))
	}
}

func TestBenchPrintsATable(t *testing.T) {
	code, stdout, stderr := execute(t, nil, "bench", "--duration", "50ms", "--warmup", "0s",
		"--lengths", "3", "--concurrency", "1", "--cases", "grpc/stream")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	lines := strings.Split(stdout, "\n")
	if len(lines) < 3 || !strings.Contains(lines[0], "CALLS/S") || lines[1] != "getStream(3), 1 concurrent" || !strings.HasPrefix(lines[2], "grpc ") {
		t.Errorf("table:\n%s", stdout)
	}
}

// TestServeComparesOnDemand runs the /compare page's real bench, on its own
// in-process servers, through `grpcplay serve`.
func TestServeComparesOnDemand(t *testing.T) {
	m := startServe(t, nil)
	resp, page := testkit.Get(t, m.HTTPURL()+"/compare")
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="compare-form"`) {
		t.Fatalf("GET /compare = %d:\n%s", resp.StatusCode, page)
	}
	resp, err := http.Post(m.HTTPURL()+"/compare/run", "application/x-www-form-urlencoded", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// A plain form is sent back to the page, which shows the run.
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != "/compare" {
		t.Fatalf("POST /compare/run: %d at %s", resp.StatusCode, resp.Request.URL)
	}
	var st struct {
		Running bool   `json:"running"`
		Done    int    `json:"done"`
		Total   int    `json:"total"`
		Error   string `json:"error"`
	}
	testkit.Eventually(t, 2*time.Minute, func() error {
		_, body := testkit.Get(t, m.HTTPURL()+"/compare/status")
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatal(err)
		}
		return testkit.Failf(!st.Running, "the bench did not end")
	})
	// items over every transport, stream over those that have it (not the
	// protobuf ones), at two lengths, each measured three times.
	const cases = 2 * (8 + 6)
	if st.Error != "" || st.Done != 3*cases || st.Total != 3*cases {
		t.Fatalf("status %+v", st)
	}
	_, page = testkit.Get(t, m.HTTPURL()+"/compare")
	if took := regexp.MustCompile(`the last run took [^ ]+`).FindString(page); took == "" {
		t.Error("the page does not say how long the run took")
	} else {
		t.Log(took)
	}
	if n := strings.Count(page, `class="bar"`); n != cases {
		t.Errorf("the chart has %d bars, want %d", n, cases)
	}
	for _, want := range []string{"grpc/items", "rest/stream", "rest-close/items", "grpcplay bench --cases=items,stream --lengths=10,1000 --concurrency=8"} {
		if !strings.Contains(page, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
}
