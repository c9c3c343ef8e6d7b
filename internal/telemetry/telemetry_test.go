package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/internal/telemetry"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func env(vars map[string]string) func(string) string {
	return func(k string) string { return vars[k] }
}

func TestTracingFollowsTheStandardVariables(t *testing.T) {
	for _, tt := range []struct {
		vars     map[string]string
		enabled  bool
		protocol string
		err      string
	}{
		{nil, false, "http/protobuf", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, true, "http/protobuf", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://collector:4318/v1/traces"}, true, "http/protobuf", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_SDK_DISABLED": "TRUE"}, false, "http/protobuf", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "x", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, true, "grpc", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/protobuf"}, false, "http/protobuf", ""},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "http/json"}, false, "", "not supported"},
	} {
		getenv := env(tt.vars)
		if got := telemetry.TracingEnabled(getenv); got != tt.enabled {
			t.Errorf("%v: enabled %v, want %v", tt.vars, got, tt.enabled)
		}
		p, err := telemetry.TracingProtocol(getenv)
		if p != tt.protocol || (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%v: protocol %q, %v; want %q, %q", tt.vars, p, err, tt.protocol, tt.err)
		}
	}
}

// Off, tracing is nothing at all: no provider for the servers to install.
func TestTracingOffIsNil(t *testing.T) {
	tr, err := telemetry.NewTracing(context.Background(), env(nil), "test")
	if err != nil || tr != nil || tr.TracerProvider() != nil || tr.Shutdown(context.Background()) != nil {
		t.Fatalf("NewTracing with no endpoint = %v, %v; want nil and a nil provider", tr, err)
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	log, err := telemetry.NewLogger(&buf, "json", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.Debug("hidden")
	log.Info("shown", "k", 1)
	var line map[string]any
	if err := json.Unmarshal(buf.Bytes(), &line); err != nil || line["msg"] != "shown" || line["k"] != float64(1) {
		t.Fatalf("logged %q (%v)", buf.String(), err)
	}
	if _, err := telemetry.NewLogger(&buf, "xml", slog.LevelInfo); err == nil {
		t.Fatal("NewLogger accepted format xml")
	}
}

func TestRegisterReturnsTheCollectorAlreadyThere(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "things_total", Help: "Things."}
	first := telemetry.Register(reg, prometheus.NewCounter(opts))
	second := telemetry.Register(reg, prometheus.NewCounter(opts))
	if first != second {
		t.Fatal("a second registration made a second counter")
	}
}

// Info lines are batched and written shortly after; a warning is written
// at once with everything before it; Close writes the rest.
func TestBufferedLogOutput(t *testing.T) {
	var out telemetrytest.LogBuffer
	w := telemetry.NewBufferedWriter(&out)
	log, err := telemetry.NewLogger(w, "text", slog.LevelInfo)
	if err != nil {
		t.Fatal(err)
	}
	log.Info("first")
	if got := out.String(); got != "" {
		t.Fatalf("an info line was written at once: %q", got)
	}
	testkit.Eventually(t, 10*time.Second, func() error {
		return testkit.Failf(strings.Contains(out.String(), "msg=first"), "the buffered info line was never written")
	})

	log.Info("second")
	log.Warn("trouble")
	if got := out.String(); !strings.Contains(got, "msg=second") || !strings.Contains(got, "msg=trouble") {
		t.Fatalf("after a warning, the output is %q; want the info line before it and the warning", got)
	}
	log.Info("last")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "msg=last") {
		t.Fatalf("Close did not write the last line: %q", out.String())
	}
	log.Info("after close")
	if !strings.Contains(out.String(), "after close") {
		t.Fatal("a line after Close was held back")
	}
}

// Lines written from many goroutines while the buffer flushes, many times
// over, all come out once, whole, and in each writer's order.
func TestBufferedWriterUnderConcurrentFlushes(t *testing.T) {
	var out telemetrytest.LogBuffer
	w := telemetry.NewBufferedWriter(&out)
	const writers, lines = 8, 5000 // about 6 flushes' worth of 64 KiB
	var wg sync.WaitGroup
	for g := range writers {
		wg.Go(func() {
			for i := range lines {
				if _, err := fmt.Fprintf(w, "writer=%d line=%d\n", g, i); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, writers)
	for _, line := range strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n") {
		var g, i int
		if _, err := fmt.Sscanf(line, "writer=%d line=%d", &g, &i); err != nil || g < 0 || g >= writers {
			t.Fatalf("line %q is not one that was written", line)
		}
		if i != next[g] {
			t.Fatalf("writer %d: line %d came out where line %d was due", g, i, next[g])
		}
		next[g]++
	}
	for g, n := range next {
		if n != lines {
			t.Errorf("writer %d: %d of its %d lines came out", g, n, lines)
		}
	}
}
