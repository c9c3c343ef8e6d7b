//go:build unix

package backend_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/telemetry"
)

// BenchmarkObservability measures what observability costs the backend:
// the same calls with it off, on as `grpcplay backend` runs by default
// (Prometheus metrics, and a JSON log line per call at info, written to a
// file through the command's log buffer), each of those two alone, and on with
// tracing too (every call sampled, spans batched to an exporter that drops
// them). Run it with
// -count, so that the variants alternate and share the machine's noise:
//
//	go test ./backend -run '^$' -bench Observability -count 8 | benchstat -col /obs -
//
// On a machine others share, compare cpu-ns/op (CPU the process spends per
// call, client included) rather than sec/op.
// observabilityVariants are the backend's settings the benchmark compares.
var observabilityVariants = []struct {
	name   string
	config func(b *testing.B) backend.Config
}{
	{"obs=off", func(*testing.B) backend.Config { return backend.Config{} }},
	{"obs=on", observedConfig},
	// Each part alone, to tell which one costs what.
	{"obs=metrics", func(*testing.B) backend.Config { return backend.Config{Metrics: telemetry.NewRegistry()} }},
	{"obs=logs", func(b *testing.B) backend.Config {
		cfg := observedConfig(b)
		cfg.Metrics = nil
		return cfg
	}},
	{"obs=on+tracing", func(b *testing.B) backend.Config {
		cfg := observedConfig(b)
		tp := sdktrace.NewTracerProvider(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
		b.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		cfg.TracerProvider = tp
		return cfg
	}},
}

func BenchmarkObservability(b *testing.B) {
	cases := []struct {
		name string
		run  func(b *testing.B, c *client.Client)
	}{
		{"rpc=sayHello/mode=parallel", func(b *testing.B, c *client.Client) {
			runUnary(b, true, func(ctx context.Context) error {
				_, err := c.SayHello(ctx, "Gonzalo")
				return err
			})
		}},
		{"rpc=getStream/length=1000", func(b *testing.B, c *client.Client) {
			b.ReportAllocs()
			for b.Loop() {
				if err := drain(c, 1000); err != nil {
					b.Fatal(err)
				}
			}
			reportItemsPerSecond(b, 1000)
		}},
		{"rpc=getStream/length=1000/mode=parallel", func(b *testing.B, c *client.Client) {
			runUnary(b, true, func(context.Context) error { return drain(c, 1000) })
			reportItemsPerSecond(b, 1000)
		}},
	}
	for _, tc := range cases {
		b.Run(tc.name, func(b *testing.B) {
			for _, v := range observabilityVariants {
				b.Run(v.name, func(b *testing.B) {
					cfg := v.config(b)
					c := startBenchClient(b, func(lis net.Listener) (func() error, func()) {
						srv := backend.New(cfg)
						return func() error { return srv.Serve(lis) }, func() {
							ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
							defer cancel()
							srv.Shutdown(ctx)
						}
					})
					cpu := processCPU()
					tc.run(b, c)
					// The machine is shared: wall time depends on what else
					// runs, but the CPU the process spends per call much less.
					b.ReportMetric(float64(processCPU()-cpu)/float64(b.N), "cpu-ns/op")
				})
			}
		})
	}
}

// processCPU is the CPU time the process has used, user and system: the
// client's and the server's, as both run here.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// observedConfig is the backend as `grpcplay backend --log-format json` runs.
func observedConfig(b *testing.B) backend.Config {
	logFile, err := os.Create(filepath.Join(b.TempDir(), "backend.log"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { logFile.Close() })
	// Buffered, as the servers of the grpcplay command log.
	out := telemetry.NewBufferedWriter(logFile)
	b.Cleanup(func() { out.Close() })
	log, err := telemetry.NewLogger(out, "json", slog.LevelInfo)
	if err != nil {
		b.Fatal(err)
	}
	return backend.Config{Metrics: telemetry.NewRegistry(), Logger: log}
}

func drain(c *client.Client, n int32) error {
	var got int32
	for _, err := range c.GetStream(context.Background(), n) {
		if err != nil {
			return err
		}
		got++
	}
	if got != n {
		return fmt.Errorf("GetStream(%d) yielded %d items", n, got)
	}
	return nil
}
