package bench

import (
	"errors"
	"math"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/gateway"
)

func TestRepetitionsAlternateTheOrder(t *testing.T) {
	cfg := Config{Lengths: []int32{10}, Concurrency: []int{1}, Cases: []string{"grpc/items", "rest/items", "rest-plain/items", "grpc/hello", "rest/hello"}}.withDefaults()
	cases := cfg.cases()
	name := func(cs []Case) string {
		var s []string
		for _, c := range cs {
			s = append(s, c.Transport+"/"+c.Method)
		}
		return strings.Join(s, " ")
	}
	if got, want := name(interleaved(cases, 0)), "grpc/hello rest/hello grpc/items rest/items rest-plain/items"; got != want {
		t.Errorf("first repetition %q, want %q", got, want)
	}
	if got, want := name(interleaved(cases, 1)), "rest/hello grpc/hello rest-plain/items rest/items grpc/items"; got != want {
		t.Errorf("second repetition %q, want %q", got, want)
	}
}

func TestAggregateTakesMediansAndSpread(t *testing.T) {
	srv := func(v float64) *float64 { return &v }
	var runs []Result
	for _, v := range []float64{100, 80, 120} {
		runs = append(runs, Result{Case: Case{Transport: TransportGRPC, Method: MethodHello}, Calls: int64(v), CallsPerSec: v,
			CPUPerCall: v / 10, ServerCPUPerCall: srv(v / 20), Latency: Latency{P99: v / 100}, Handlers: map[string]int64{"SayHello via grpc-go": int64(v)}, Answered: int64(v)})
	}
	got := aggregate(runs)
	if got.CallsPerSec != 100 || got.CPUPerCall != 10 || *got.ServerCPUPerCall != 5 || got.Latency.P99 != 1 || got.Calls != 300 {
		t.Errorf("medians and sums: %+v", got)
	}
	if got.Spread != 0.4 || len(got.Runs) != 3 || got.Handlers["SayHello via grpc-go"] != 300 || got.Answered != 300 {
		t.Errorf("spread %v, %d runs, service calls %v", got.Spread, len(got.Runs), got.Handlers)
	}
}

func TestCommittedRunRefusesABusyMachine(t *testing.T) {
	was := loadAverage
	t.Cleanup(func() { loadAverage = was })
	loadAverage = func() float64 { return 1.5 }
	_, err := Run(t.Context(), Config{Committed: true})
	if !errors.Is(err, ErrBusy) || !strings.Contains(err.Error(), "load average is 1.50") {
		t.Errorf("err %v, want a refusal that gives the load", err)
	}
	if err := (Config{Committed: true, Duration: CommittedDuration / 2}).Validate(); err == nil || !strings.Contains(err.Error(), "a committed run measures each case at least") {
		t.Errorf("short committed run: %v", err)
	}
}

func TestSkippedCasesSayWhy(t *testing.T) {
	cfg := Config{Target: "x:1", RESTTarget: "http://x:2"}.withDefaults()
	_, skipped := cfg.plan()
	var names []string
	for _, s := range skipped {
		names = append(names, s.Cases)
		if s.Reason == "" {
			t.Errorf("%s: no reason", s.Cases)
		}
	}
	for _, want := range []string{"rest-plain/hello", "rest-h2/hello", "rest-proto/stream"} {
		if !slices.Contains(names, want) {
			t.Errorf("skipped %v lacks %s", names, want)
		}
	}
}

func TestPlainRESTAnswersAsTheGateway(t *testing.T) {
	h := newPlainREST(gateway.Config{}, backend.NewService(backend.DefaultLimits))
	get := func(path string, header ...string) (int, string) {
		req := httptest.NewRequest(http.MethodGet, path, nil)
		for i := 0; i+1 < len(header); i += 2 {
			req.Header.Set(header[i], header[i+1])
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, req)
		return w.Code, strings.TrimSpace(w.Body.String())
	}
	for _, tt := range []struct {
		path, header string
		code         int
		body         string
	}{
		{"/v1/hello?name=bench", "", 200, `{"message":"Hello bench!"}`},
		{"/v1/items?length=2", "", 200, `{"items":[{"id":1,"name":"name 1"},{"id":2,"name":"name 2"}]}`},
		{"/v1/stream?length=2", "", 200, "{\"result\":{\"id\":1,\"name\":\"name 1\"}}\n{\"result\":{\"id\":2,\"name\":\"name 2\"}}"},
		{"/v1/items?length=x", "", 400, `"length \"x\" is not a 32-bit whole number"`},
		{"/v1/items?length=100001", "", 400, "out of range"},
		{"/v1/hello?name=bench", "1x", 400, "bad Grpc-Timeout"},
		{"/v1/nothing", "", 404, ""},
	} {
		var header []string
		if tt.header != "" {
			header = []string{"Grpc-Timeout", tt.header}
		}
		code, body := get(tt.path, header...)
		if code != tt.code || !strings.Contains(body, tt.body) {
			t.Errorf("GET %s: %d %s, want %d and %q", tt.path, code, body, tt.code, tt.body)
		}
	}
}

func TestHalvesGiveTheirRangeOverRepetitions(t *testing.T) {
	r := &Report{Repeat: 2}
	for _, tp := range []struct {
		transport string
		runs      [2]float64
	}{
		{TransportREST, [2]float64{100, 100}}, {TransportRESTH2, [2]float64{90, 110}}, {TransportRESTProto, [2]float64{150, 170}},
		{TransportRESTH2Proto, [2]float64{160, 160}}, {TransportGRPC, [2]float64{200, 240}}, {TransportRESTPlain, [2]float64{120, 120}},
	} {
		runs := []Result{{CallsPerSec: tp.runs[0]}, {CallsPerSec: tp.runs[1]}}
		for i := range runs {
			runs[i].Case = Case{Transport: tp.transport, Method: MethodHello, Concurrency: 1}
		}
		r.Cases = append(r.Cases, aggregate(runs))
	}
	h := r.Halves()
	near := func(a, b float64) bool { return math.Abs(a-b) < 1e-9 }
	if h.Cases != 1 || !near(h.GRPC, 2.2) || !near(h.Plain, 1.2) || len(h.Runs) != 2 || !near(h.Runs[0].GRPC, 2) || !near(h.Runs[1].GRPC, 2.4) {
		t.Fatalf("halves %+v", h)
	}
	if s := h.String(); !strings.Contains(s, "gRPC 2.20× (runs 2.00–2.40×)") || !strings.Contains(s, "plain net/http + encoding/json 1.20×") {
		t.Errorf("%s", s)
	}
}

func TestSameWorkCatchesACacheAndAnotherHandler(t *testing.T) {
	hello := Case{Transport: TransportGRPC, Method: MethodHello, Concurrency: 1}
	plain := Case{Transport: TransportRESTPlain, Method: MethodItems, Length: 10, Concurrency: 1}
	r := &Report{Cases: []Result{
		{Case: hello, Name: "fair", Answered: 100, Handlers: map[string]int64{"SayHello via grpc-go": 100}},
		{Case: hello, Name: "cached", Answered: 100, Handlers: map[string]int64{"SayHello via grpc-go": 1}},
		{Case: plain, Name: "elsewhere", Answered: 100, Handlers: map[string]int64{"GetAll via grpc-gateway": 100}},
		{Case: hello, Name: "twice", Answered: 100, Handlers: map[string]int64{"SayHello via grpc-go": 200}},
	}}
	checked, wrong := r.SameWork(2)
	if checked != 4 || len(wrong) != 3 || !strings.HasPrefix(wrong[0], "cached:") || !strings.HasPrefix(wrong[1], "elsewhere:") || !strings.HasPrefix(wrong[2], "twice:") {
		t.Errorf("checked %d, wrong %q", checked, wrong)
	}
}

// Every transport has its place in the chart's legend.
func TestEveryTransportHasALegend(t *testing.T) {
	for _, tr := range Transports {
		if transportLabel[tr] == "" || transportColor[tr] == "" {
			t.Errorf("transport %s has no label or colour in the chart (svg.go)", tr)
		}
	}
}
