package telemetry

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
)

// The cost of each piece of observability on its own, with no network, to
// explain the whole-call figures of BenchmarkObservability (backend): what
// the metrics add per call and per streamed message, and what a log line
// costs written to a file.

type nopStream struct{ grpc.ServerStream }

func (nopStream) Context() context.Context { return context.Background() }
func (nopStream) SendMsg(any) error        { return nil }

var streamInfo = &grpc.StreamServerInfo{FullMethod: "/api.Api/getStream", IsServerStream: true}

func BenchmarkServerMetricsPerMessage(b *testing.B) {
	intercept := serverMetrics(prometheus.NewRegistry()).streamServer
	handler := func(_ any, ss grpc.ServerStream) error {
		for b.Loop() {
			if err := ss.SendMsg(nil); err != nil {
				return err
			}
		}
		return nil
	}
	b.ReportAllocs()
	if err := intercept(nil, nopStream{}, streamInfo, handler); err != nil {
		b.Fatal(err)
	}
}

func BenchmarkServerMetricsPerCall(b *testing.B) {
	intercept := serverMetrics(prometheus.NewRegistry()).unaryServer
	info := &grpc.UnaryServerInfo{FullMethod: "/api.Api/sayHello"}
	handler := func(context.Context, any) (any, error) { return nil, nil }
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := intercept(ctx, nil, info, handler); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCallLogLine(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "log"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	log, err := NewLogger(f, "json", slog.LevelInfo)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		log.LogAttrs(ctx, slog.LevelInfo, "call",
			slog.String("method", "/api.Api/sayHello"), slog.String("code", "OK"),
			slog.Duration("duration", 1234*time.Microsecond), slog.String("peer", "127.0.0.1:54321"))
	}
}
