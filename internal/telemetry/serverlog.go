package telemetry

import (
	"context"
	"log"
	"log/slog"
	"strings"
)

// clientCaused are the starts of the lines net/http's server logs for what
// a client did: a handshake it broke off, a query with a semicolon. A
// client can make one per connection or per request, so at warn, which
// also flushes the log, they would let any client flood it.
var clientCaused = []string{
	"http: TLS handshake error",
	"http: URL query contains semicolon",
	"http2: server: error reading preface",
	"http2: received GOAWAY",
	"http2: server connection error",
	"http2: timeout waiting for SETTINGS frames",
}

// ServerErrorLog is an http.Server's ErrorLog: lines a client caused at
// debug, the rest (a failed accept, a handler's misuse of the response)
// at warn, since an operator must look at those.
func ServerErrorLog(logger *slog.Logger) *log.Logger {
	return log.New(serverLogWriter{logger}, "", 0)
}

type serverLogWriter struct{ log *slog.Logger }

func (w serverLogWriter) Write(p []byte) (int, error) {
	line := strings.TrimSuffix(string(p), "\n")
	level := slog.LevelWarn
	for _, prefix := range clientCaused {
		if strings.HasPrefix(line, prefix) {
			level = slog.LevelDebug
			break
		}
	}
	w.log.Log(context.Background(), level, line)
	return len(p), nil
}
