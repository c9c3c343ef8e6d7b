// Command configdoc writes docs/configuration.md from the help of a freshly
// built grpcplay binary. Run it as `go generate ./internal/configdoc`.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/grpcplay/grpcplay/internal/configdoc"
)

func main() {
	out := flag.String("o", "docs/configuration.md", "file to write")
	flag.Parse()
	if err := write(*out); err != nil {
		fmt.Fprintln(os.Stderr, "configdoc:", err)
		os.Exit(1)
	}
}

func write(out string) error {
	dir, err := os.MkdirTemp("", "configdoc")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "grpcplay")
	build := exec.Command("go", "build", "-o", bin, "github.com/grpcplay/grpcplay/cmd/grpcplay")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("go build: %w", err)
	}
	help, err := configdoc.Help(context.Background(), bin)
	if err != nil {
		return err
	}
	return os.WriteFile(out, configdoc.Render(help), 0o644)
}
