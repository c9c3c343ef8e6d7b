package cli_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/grpclog"

	"github.com/grpcplay/grpcplay/internal/cli"
	"github.com/grpcplay/grpcplay/internal/telemetry/telemetrytest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// grpc-go's and grpc-gateway's own logs (grpclog) come out in the server
// command's format and level: a JSON pipeline gets JSON lines only, and
// grpclog's info chatter is debug.
func TestLibraryLogsFollowTheLogFormat(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var stdout telemetrytest.LogBuffer
	var logs telemetrytest.LogBuffer
	done := make(chan int, 1)
	go func() {
		done <- cli.Execute(ctx, []string{"serve", "--log-format", "json", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "", "--rest-addr", ""}, &stdout, &logs, env(nil))
	}()
	testkit.Eventually(t, 30*time.Second, func() error {
		return testkit.Failf(strings.Contains(stdout.String(), "open http"), "serve did not start")
	})
	// What grpc-gateway says when a client goes away mid-response.
	grpclog.Errorf("Failed to write response: %v", "write tcp: i/o timeout")
	grpclog.Warningln("a library warning")
	grpclog.Info("connectivity chatter")
	cancel()
	if code := <-done; code != 0 {
		t.Fatalf("serve exited %d", code)
	}

	lines := logs.Lines(t) // fails on any line that is not JSON
	for _, want := range []map[string]any{
		{"level": "ERROR", "msg": "Failed to write response: write tcp: i/o timeout", "logger": "grpclog"},
	} {
		if got := telemetrytest.Matching(lines, want); len(got) != 1 {
			t.Errorf("%d lines like %v, want 1:\n%v", len(got), want, lines)
		}
	}
	for _, chatter := range []string{"connectivity chatter", "a library warning"} {
		if got := telemetrytest.Matching(lines, map[string]any{"msg": chatter}); len(got) != 0 {
			t.Errorf("grpclog's info and warnings are debug, but were logged at the default level info: %v", got)
		}
	}
	// After the command, grpclog no longer writes to its log.
	grpclog.Warningln("after the command")
	if got := telemetrytest.Matching(logs.Lines(t), map[string]any{"msg": "after the command"}); len(got) != 0 {
		t.Errorf("grpclog wrote to a finished command's log: %v", got)
	}
}
