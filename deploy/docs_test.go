package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/docstest"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// startsThePage matches a command that starts containers in the background
// with the page on port 5000, as the docs' blocks do: after it the page
// must answer.
var startsThePage = regexp.MustCompile(`\bup -d\b|\brun -d\b`)

// TestDocsContainerBlocks runs the container blocks of the README and docs/
// (those marked <!-- docstest: docker -->) exactly as written, command by
// command, in the repository, as a user would type them; after each command
// that starts the page, the page must answer on port 5000.
//
// The environment stands in for the user's: GO_IMAGE names the builder image
// (scripts/builder-image's, as docs/deployment.md says to export on a
// machine that cannot pull images, or $GRPCPLAY_GO_IMAGE), and
// COMPOSE_PROJECT_NAME keeps the run apart from any other project.
func TestDocsContainerBlocks(t *testing.T) {
	if os.Getenv("GRPCPLAY_DOCKER_TESTS") != "1" {
		t.Skip("set GRPCPLAY_DOCKER_TESTS=1 to run the Docker tests")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	checkDockerAndPort(t, repo)
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	project := "grpcplaydocs" + hex.EncodeToString(suffix)
	env := []string{"GO_IMAGE=" + goBuilderImage(t, repo), "COMPOSE_PROJECT_NAME=" + project}
	t.Cleanup(func() {
		// What a failed block left running.
		runErr(3*time.Minute, repo, env, "docker-compose", "down", "-v", "--remove-orphans", "--timeout", "30")
		runErr(time.Minute, repo, nil, "docker", "rm", "-f", "grpcplay")
	})
	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)

	if ran := runDockerBlocks(t, repo, env, client); ran == 0 {
		t.Fatal("no block is marked <!-- docstest: docker -->")
	}
}

// runDockerBlocks runs every docker block of the README and docs/, in
// order, and says how many it ran.
func runDockerBlocks(t *testing.T, repo string, env []string, client *http.Client) (ran int) {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(repo, "docs", "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	built := false
	for _, file := range append([]string{filepath.Join(repo, "README.md")}, files...) {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(repo, file)
		for _, b := range docstest.DockerBlocks(string(text)) {
			for _, cmd := range b.Commands {
				start := time.Now()
				out, err := runCombined(20*time.Minute, repo, env, "bash", "-euo", "pipefail", "-c", cmd)
				if err != nil {
					t.Fatalf("%s:%d: %s: %v\n%s", name, b.Line, cmd, err, tail(out, 40))
				}
				t.Logf("%s:%d: %s: %v", name, b.Line, strings.TrimSpace(cmd), time.Since(start).Round(time.Millisecond))
				if reused, ok := reusesModuleLayer(out); ok {
					// The image's builds share the Dockerfile's module layer:
					// only the first of this run may download the modules.
					if built && !reused {
						t.Errorf("%s:%d: %s downloaded the modules again instead of reusing the layer of the build before it", name, b.Line, cmd)
					}
					built = true
				}
				if startsThePage.MatchString(cmd) {
					testkit.Eventually(t, 2*time.Minute, func() error {
						_, err := getPage(client)
						return err
					})
					client.CloseIdleConnections()
				}
			}
			ran++
		}
	}
	return ran
}

// moduleStep is the Dockerfile's module download, as the classic builder
// prints the step.
const moduleStep = `RUN ["go", "mod", "download"]`

// reusesModuleLayer reports whether a build's output shows the Dockerfile's
// module download step taken from the layer cache; ok is false when the
// output shows no such step (not a build, or a builder that prints no steps).
func reusesModuleLayer(out string) (reused, ok bool) {
	_, after, found := strings.Cut(out, moduleStep)
	if !found {
		return false, false
	}
	lines := strings.SplitN(after, "\n", 3)
	return len(lines) > 1 && strings.Contains(lines[1], "Using cache"), true
}

// runCombined runs a command with a deadline and returns what it printed,
// stdout and stderr together, as a user sees it.
func runCombined(timeout time.Duration, dir string, env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestReusesModuleLayer(t *testing.T) {
	for _, tc := range []struct {
		out          string
		reused, seen bool
	}{
		{"Step 7/21 : RUN [\"go\", \"mod\", \"download\"]\n ---> Using cache\n ---> 1f0c2d\n", true, true},
		{"Step 7/21 : RUN [\"go\", \"mod\", \"download\"]\n ---> Running in 9de1fed7e264\n", false, true},
		{"grpcplay-go:local\n", false, false},
	} {
		if reused, seen := reusesModuleLayer(tc.out); reused != tc.reused || seen != tc.seen {
			t.Errorf("reusesModuleLayer(%q) = %v, %v; want %v, %v", tc.out, reused, seen, tc.reused, tc.seen)
		}
	}
}
