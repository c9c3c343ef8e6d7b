package telemetry

import (
	"fmt"
	"io"
	"log/slog"
)

// LogFormats are the formats NewLogger writes.
var LogFormats = []string{"text", "json"}

// NewLogger writes records at level and above to w, as logfmt-like text
// for people or JSON lines for a log pipeline.
func NewLogger(w io.Writer, format string, level slog.Leveler) (*slog.Logger, error) {
	opts := &slog.HandlerOptions{Level: level}
	switch format {
	case "text", "":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("log format %q is not text or json", format)
}
