package telemetry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// LogFormats are the formats NewLogger writes.
var LogFormats = []string{"text", "json"}

// NewLogger writes records at level and above to w, as logfmt-like text
// for people or JSON lines for a log pipeline. When w is a BufferedWriter,
// records at warn and above are written out at once.
func NewLogger(w io.Writer, format string, level slog.Leveler) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	switch format {
	case "text", "":
		h = slog.NewTextHandler(w, opts)
	case "json":
		h = slog.NewJSONHandler(w, opts)
	default:
		return nil, fmt.Errorf("log format %q is not text or json", format)
	}
	if b, ok := w.(*BufferedWriter); ok {
		h = flushOnWarn{Handler: h, out: b}
	}
	return slog.New(h), nil
}

// LogLine writes one line of a server's hot path, a call or a request, as
// Logger.LogAttrs would but without the source position: LogAttrs unwinds
// the stack for it on every line (runtime.Callers, 3% of a sayHello's
// instructions), and no handler here prints it. The caller has
// checked Logger.Enabled.
func LogLine(ctx context.Context, log *slog.Logger, level slog.Level, msg string, attrs ...slog.Attr) {
	r := slog.NewRecord(time.Now(), level, msg, 0)
	r.AddAttrs(attrs...)
	_ = log.Handler().Handle(ctx, r)
}
