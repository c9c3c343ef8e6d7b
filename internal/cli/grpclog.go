package cli

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"

	"google.golang.org/grpc/grpclog"
)

// grpc-go and grpc-gateway log through grpclog, a process-wide logger that
// writes Go's default log format to stderr. A server command
// routes it into its own slog logger, so that --log-format json gets JSON
// lines only and --log-level applies. grpclog's info and warnings become
// debug: they are grpc-go's connection chatter (a backend that is down gives
// a warning per reconnect attempt, every few seconds), which grpc's own
// default hides too; its errors stay errors.
//
// grpclog.SetLoggerV2 is global and unsynchronised: it may only run before
// any gRPC code does. So it runs once per process, in Execute (a real
// process runs Execute once, before it starts anything), and installs an
// adapter whose slog.Logger is swapped atomically. A test binary runs many
// commands at once, so its TestMain installs the adapter before any test
// starts (see export_test.go), and Execute then only swaps the logger.

// libraryLog is where grpclog's lines go. nil, outside a server command,
// keeps grpclog's own default: errors only, to stderr.
var libraryLog atomic.Pointer[slog.Logger]

var installGRPCLogOnce sync.Once

func installGRPCLog() {
	installGRPCLogOnce.Do(func() { grpclog.SetLoggerV2(grpcLogger{}) })
}

// routeLibraryLogs sends grpclog's lines to log until the returned func
// restores the previous logger.
func routeLibraryLogs(log *slog.Logger) (restore func()) {
	installGRPCLog()
	prev := libraryLog.Swap(log)
	return func() { libraryLog.Store(prev) }
}

// grpcLogger is a grpclog.LoggerV2 that writes to libraryLog.
type grpcLogger struct{}

func (grpcLogger) log(level slog.Level, msg func() string) {
	l := libraryLog.Load()
	if l == nil {
		if level < slog.LevelError {
			return
		}
		l = slog.Default()
	}
	ctx := context.Background()
	if !l.Enabled(ctx, level) {
		return
	}
	l.Log(ctx, level, strings.TrimSuffix(msg(), "\n"), "logger", "grpclog")
}

func sprint(args []any) func() string   { return func() string { return fmt.Sprint(args...) } }
func sprintln(args []any) func() string { return func() string { return fmt.Sprintln(args...) } }
func sprintf(format string, args []any) func() string {
	return func() string { return fmt.Sprintf(format, args...) }
}

func (g grpcLogger) Info(args ...any)                 { g.log(slog.LevelDebug, sprint(args)) }
func (g grpcLogger) Infoln(args ...any)               { g.log(slog.LevelDebug, sprintln(args)) }
func (g grpcLogger) Infof(format string, args ...any) { g.log(slog.LevelDebug, sprintf(format, args)) }
func (g grpcLogger) Warning(args ...any)              { g.log(slog.LevelDebug, sprint(args)) }
func (g grpcLogger) Warningln(args ...any)            { g.log(slog.LevelDebug, sprintln(args)) }
func (g grpcLogger) Warningf(format string, args ...any) {
	g.log(slog.LevelDebug, sprintf(format, args))
}
func (g grpcLogger) Error(args ...any)                 { g.log(slog.LevelError, sprint(args)) }
func (g grpcLogger) Errorln(args ...any)               { g.log(slog.LevelError, sprintln(args)) }
func (g grpcLogger) Errorf(format string, args ...any) { g.log(slog.LevelError, sprintf(format, args)) }

// Fatal and its kin keep grpclog's contract: log, then exit 1.
func (g grpcLogger) Fatal(args ...any)                 { g.fatal(sprint(args)) }
func (g grpcLogger) Fatalln(args ...any)               { g.fatal(sprintln(args)) }
func (g grpcLogger) Fatalf(format string, args ...any) { g.fatal(sprintf(format, args)) }

func (g grpcLogger) fatal(msg func() string) {
	g.log(slog.LevelError, msg)
	os.Exit(1)
}

// V guards grpc-go's verbose logs (levels 1 and up), which stay off, as
// they are by default without GRPC_GO_LOG_VERBOSITY_LEVEL.
func (grpcLogger) V(level int) bool {
	l := libraryLog.Load()
	return level <= 0 && l != nil && l.Enabled(context.Background(), slog.LevelDebug)
}
