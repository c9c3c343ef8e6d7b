package deploy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// builderFingerprintLabel is the label scripts/builder-image puts on the
// builder image it makes (internal/cmd/builderimage): what it was made from.
const builderFingerprintLabel = "dev.grpcplay.builder.fingerprint"

// goBuilderImage returns the image to pass as the Dockerfile's GO_IMAGE:
// $GRPCPLAY_GO_IMAGE when set (e.g. golang:1.26 where pulling works), else
// the image scripts/builder-image makes from the host's Go toolchain and
// modules: the command docs/deployment.md gives a machine that cannot pull
// images, which this one cannot. It reuses an image already made from the
// same toolchain and go.sum.
func goBuilderImage(t *testing.T, repo string) string {
	t.Helper()
	if img := os.Getenv("GRPCPLAY_GO_IMAGE"); img != "" {
		return img
	}
	start := time.Now()
	out := run(t, 15*time.Minute, repo, nil, filepath.Join(repo, "scripts", "builder-image"))
	lines := strings.Split(strings.TrimSpace(out), "\n")
	tag := lines[len(lines)-1]
	t.Logf("scripts/builder-image: %s in %v", tag, time.Since(start).Round(time.Millisecond))
	return tag
}

// run runs a command with a deadline and returns its stdout; a failure ends
// the test with the command's output.
func run(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) string {
	t.Helper()
	out, err := runErr(timeout, dir, env, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, tail(out, 40))
	}
	return out
}

func runErr(timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

func tail(s string, lines int) string {
	all := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return strings.Join(all, "\n")
}
