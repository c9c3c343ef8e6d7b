package httpserver_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/internal/httpserver"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Serve returns nil after a graceful Shutdown, and the limits are set.
func TestServeEndsCleanlyAtShutdown(t *testing.T) {
	srv := httpserver.New(http.NotFoundHandler(), time.Second, slog.New(slog.DiscardHandler))
	if srv.ReadHeaderTimeout == 0 || srv.ReadTimeout == 0 || srv.IdleTimeout == 0 || srv.MaxHeaderBytes == 0 || srv.WriteTimeout != time.Second {
		t.Fatalf("limits not set: %+v", srv)
	}
	lis := testkit.Listen(t)
	served := make(chan error, 1)
	go func() { served <- httpserver.Serve(srv, lis) }()
	if resp, _ := testkit.Get(t, "http://"+lis.Addr().String()+"/"); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if err := httpserver.Shutdown(t.Context(), srv, slog.New(slog.DiscardHandler), "unused"); err != nil {
		t.Fatal(err)
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve after Shutdown = %v, want nil", err)
	}
}

// A request still in flight when the grace ends is cut off, and the
// operator is told.
func TestShutdownClosesWhatOutlastsTheGrace(t *testing.T) {
	release := make(chan struct{})
	started := make(chan struct{})
	srv := httpserver.New(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		close(started)
		<-release
	}), time.Minute, slog.New(slog.DiscardHandler))
	defer close(release)
	lis := testkit.Listen(t)
	served := make(chan error, 1)
	go func() { served <- httpserver.Serve(srv, lis) }()
	conn, err := net.Dial("tcp", lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	<-started
	var logs telemetrytest.LogBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	err = httpserver.Shutdown(ctx, srv, slog.New(slog.NewTextHandler(&logs, nil)), "grace period over")
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(logs.String(), "grace period over") {
		t.Fatalf("Shutdown = %v, log %q; want the deadline and the warning", err, logs.String())
	}
	if err := <-served; err != nil {
		t.Fatalf("Serve = %v, want nil", err)
	}
}
