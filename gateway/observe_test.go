package gateway_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/grpcplay/grpcplay/gateway"
	"github.com/grpcplay/grpcplay/internal/telemetry"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// Requests are counted by route and status, with raw paths folded into
// "unmatched" so that a scan cannot grow the series.
func TestMetrics(t *testing.T) {
	reg := telemetry.NewRegistry()
	r := start(t, gateway.Config{Metrics: reg})
	r.get("/v1/hello?name=x")
	r.get("/v1/items?length=2")
	r.get("/v1/items?length=-1")
	r.get("/v1/stream?length=3")
	r.get("/v1/random-1")
	r.get("/v1/random-2")
	want := `
# HELP rest_requests_total REST/JSON requests the gateway answered, by method, route and status code.
# TYPE rest_requests_total counter
rest_requests_total{code="200",method="GET",route="/v1/hello"} 1
rest_requests_total{code="200",method="GET",route="/v1/items"} 1
rest_requests_total{code="200",method="GET",route="/v1/stream"} 1
rest_requests_total{code="400",method="GET",route="/v1/items"} 1
rest_requests_total{code="404",method="GET",route="unmatched"} 2
`
	// The count is made once the answer is written, just before the
	// handler returns: the client may see the answer first.
	testkit.Eventually(t, 10*time.Second, func() error {
		return testutil.GatherAndCompare(reg, strings.NewReader(want), "rest_requests_total")
	})
	if n := testutil.CollectAndCount(reg, "rest_request_duration_seconds"); n != 4 {
		t.Errorf("%d duration series, want 4 (hello, items, stream, unmatched)", n)
	}
}

// A request gets a span named after its route that continues the caller's
// trace.
func TestTracing(t *testing.T) {
	spans := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans))
	defer tp.Shutdown(context.Background())
	r := start(t, gateway.Config{TracerProvider: tp})

	const traceID = "4bf92f3577b34da6a3ce929d0e0e4736"
	r.get("/v1/items?length=1", "traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	// The span ends as the handler returns: the client may see the
	// answer first.
	testkit.Eventually(t, 10*time.Second, func() error {
		if n := len(spans.Ended()); n != 1 {
			return fmt.Errorf("%d spans ended, want 1", n)
		}
		return nil
	})
	ended := spans.Ended()
	if s := ended[0]; s.Name() != "GET /v1/items" || s.SpanContext().TraceID().String() != traceID {
		t.Errorf("span %q in trace %s; want GET /v1/items in the caller's trace %s", s.Name(), s.SpanContext().TraceID(), traceID)
	}
}
