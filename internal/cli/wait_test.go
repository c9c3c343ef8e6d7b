package cli

import (
	"io"
	"testing"
)

// A server that fails while running ends Wait with its error, and Close then
// stops the rest instead of waiting for the failed one forever.
func TestWaitReturnsAServerFailureAndCloseStillReturns(t *testing.T) {
	m := NewMain(io.Discard, io.Discard, func(string) string { return "" })
	if err := m.ParseFlags([]string{"serve", "--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--rest-addr", "127.0.0.1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	m.servers.httpLis.Close()
	if err := m.Wait(t.Context()); err == nil {
		t.Fatal("Wait returned nil after the frontend's listener failed")
	}
	if err := m.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}
