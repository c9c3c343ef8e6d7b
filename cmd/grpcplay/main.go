// Command grpcplay runs the grpcplay backend, frontend or both, and calls them.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/grpcplay/grpcplay/internal/cli"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Execute(ctx, os.Args[1:], os.Stdout, os.Stderr, os.Getenv)
	stop()
	os.Exit(code)
}
