package docstest

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const repo = "../.."

// markdownFiles are the README and every file of docs/.
func markdownFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repo, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	return append([]string{filepath.Join(repo, "README.md")}, files...)
}

// The shell examples of the README and docs/ run, and print what the text
// shows (see docs/testing.md for the conventions).
func TestShellExamples(t *testing.T) {
	if testing.Short() {
		t.Skip("runs servers and builds; not in -short")
	}
	needNamespaces(t)
	bin := t.TempDir()
	// Outside the namespace, where the module proxy is reachable: the binary
	// the docs call grpcplay, and the pinned grpcurl that `go tool` runs.
	for _, args := range [][]string{{"build", "-o", bin, "./cmd/grpcplay"}, {"tool", "-modfile=tools/go.mod", "grpcurl", "-version"}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = repo
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	for _, file := range markdownFiles(t) {
		name, _ := filepath.Rel(repo, file)
		t.Run(name, func(t *testing.T) {
			text, err := os.ReadFile(file)
			if err != nil {
				t.Fatal(err)
			}
			p, err := newPlan(blocks(string(text)))
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			for _, b := range p.skipped {
				t.Logf("%s:%d: not run: %s", name, b.line, b.directive)
			}
			for _, b := range p.missing {
				// As the browser tests do: skipped on a laptop, a failure in
				// CI, where it would hide that the block never ran.
				if os.Getenv("CI") != "" {
					t.Errorf("%s:%d: %s", name, b.line, b.directive)
				} else {
					t.Logf("%s:%d: not run: %s", name, b.line, b.directive)
				}
			}
			if len(p.blockAt) == 0 {
				return
			}
			work := copyRepo(t)
			runFile(t, []string{
				"DOCSTEST_WORK=" + work, "GOBIN=" + bin, "PATH=" + bin + string(os.PathListSeparator) + os.Getenv("PATH"),
				// Inside the namespace there is no network: every module
				// must come from the cache, which building the binary filled.
				"GOPROXY=off", "GRPCPLAY_DURATION=100ms", "GRPCPLAY_WARMUP=20ms",
			}, name, p)
		})
	}
}

func needNamespaces(t *testing.T) {
	t.Helper()
	if out, err := namespaced(t.Context(), "ip link set lo up").CombinedOutput(); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("unshare cannot make network and PID namespaces here: %v\n%s", err, out)
		}
		t.Skipf("unshare cannot make network and PID namespaces here: %v\n%s", err, out)
	}
}

// copyRepo copies the repository's files (tracked, and new ones not
// ignored) so that the examples can write in it (certs/, bin/).
func copyRepo(t *testing.T) string {
	t.Helper()
	list := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	list.Dir = repo
	out, err := list.Output()
	if err != nil {
		t.Fatalf("git ls-files: %v", err)
	}
	work := t.TempDir()
	for _, rel := range strings.Split(strings.TrimRight(string(out), "\x00"), "\x00") {
		if err := copyFile(filepath.Join(repo, rel), filepath.Join(work, rel)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	return work
}

func copyFile(from, to string) error {
	in, err := os.Open(from)
	if err != nil {
		return err
	}
	defer in.Close()
	info, err := in.Stat()
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		return err
	}
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, info.Mode().Perm())
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}
