package telemetry_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/grpcplay/grpcplay/internal/telemetry"
)

// What a client can cause once a connection is below warn; what an
// operator must see is not.
func TestServerErrorLogLevels(t *testing.T) {
	var out bytes.Buffer
	l := telemetry.ServerErrorLog(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn})))
	l.Print("http: TLS handshake error from 127.0.0.1:5555: EOF")
	l.Print("http: URL query contains semicolon, which is no longer a supported separator")
	if out.Len() != 0 {
		t.Fatalf("client-caused lines at warn: %s", out.String())
	}
	l.Print("http: Accept error: accept tcp: too many open files; retrying in 5ms")
	if got := out.String(); !strings.Contains(got, "level=WARN") || !strings.Contains(got, "too many open files") {
		t.Fatalf("an accept error is %q, want a warn line", got)
	}
}
