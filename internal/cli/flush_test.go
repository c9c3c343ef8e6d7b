package cli

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
)

// A collector that never answers costs the last spans, which the log says,
// but not the exit status: the servers stopped cleanly.
func TestFailedTraceFlushIsNotAFailure(t *testing.T) {
	testOver := make(chan struct{})
	silent := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-testOver:
		}
	}))
	defer silent.Close()
	defer close(testOver)
	// The exporter reads the process's environment, as in production.
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", silent.URL)
	t.Setenv("OTEL_SERVICE_NAME", "")
	var logs telemetrytest.LogBuffer
	m := NewMain(io.Discard, &logs, func(k string) string {
		if k == "OTEL_EXPORTER_OTLP_ENDPOINT" {
			return silent.URL
		}
		return ""
	})
	m.servers.traceFlushTimeout = 200 * time.Millisecond
	if err := m.ParseFlags([]string{"serve", "--log-format", "json", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "", "--rest-addr", ""}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	resp, err := http.Get(m.HTTPURL() + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if err := m.Close(); err != nil {
		t.Fatalf("Close with a silent collector = %v; want nil", err)
	}
	if got := telemetrytest.Matching(logs.Lines(t), map[string]any{"level": "WARN", "msg": "flushing traces at shutdown; the last spans are lost"}); len(got) != 1 {
		t.Errorf("%d warnings about the lost spans, want 1:\n%v", len(got), logs.Lines(t))
	}
}
