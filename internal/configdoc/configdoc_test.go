package configdoc_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/internal/configdoc"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// docs/configuration.md must be what the binary's --help says today.
func TestConfigurationMatchesHelp(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "grpcplay")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/grpcplay/grpcplay/cmd/grpcplay").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	help, err := configdoc.Help(context.Background(), bin)
	if err != nil {
		t.Fatal(err)
	}
	want := string(configdoc.Render(help))
	got, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("docs/configuration.md differs from the binary's --help: run `go generate ./internal/configdoc`\nfirst difference:\n%s", firstDiff(string(got), want))
	}
}

// Every flag of the help is in a row of its own, with its environment
// variable and default taken out of the description.
func TestRenderParsesFlagDefaults(t *testing.T) {
	help := map[string]string{}
	for _, c := range configdoc.Commands {
		help[c] = "grpcplay " + c + ": what it does.\n\nUsage: grpcplay " + c + " [flags]\n\nFlags:\n"
	}
	help["call"] += "  --backend string\n    \tgRPC target (env BACKEND_HOST and BACKEND_PORT) (default \"dns:///localhost:50051\")\n  -v\tverbose\n"
	help["bench"] += "not a flag line\n"
	help["serve"] += "  --grace duration\n    \ton SIGTERM, how long calls may take (env GRPCPLAY_GRACE) (default 20s)\n  --debug-page\n    \tserve /debug | more (env GRPCPLAY_DEBUG_PAGE) (default true)\n"
	help["version"] = "grpcplay version: print the version.\n\nUsage: grpcplay version\n"
	doc := string(configdoc.Render(help))
	for _, row := range []string{
		"| `--grace` duration | `GRPCPLAY_GRACE` | `20s` | on SIGTERM, how long calls may take |",
		"| `--debug-page` | `GRPCPLAY_DEBUG_PAGE` | `true` | serve /debug \\| more |",
		"| `-v` |  |  | verbose |",
		"| `--backend` string | `BACKEND_HOST and BACKEND_PORT` | `\"dns:///localhost:50051\"` | gRPC target |",
	} {
		if !strings.Contains(doc, row+"\n") {
			t.Errorf("no row %q in\n%s", row, doc)
		}
	}
	if !strings.Contains(doc, "## grpcplay serve\n\nWhat it does.\n\n```\nUsage: grpcplay serve [flags]\n```\n") {
		t.Errorf("serve's purpose is not the paragraph above its usage:\n%s", doc)
	}
	// A layout it cannot read goes in verbatim rather than half-parsed.
	if !strings.Contains(doc, "```\ngrpcplay bench: what it does.\n\nUsage: grpcplay bench [flags]\n\nFlags:\nnot a flag line\n```") {
		t.Errorf("bench's help in an unknown layout is not shown as it is:\n%s", doc)
	}
	if !strings.Contains(doc, "## grpcplay version\n\nPrint the version.\n\n```\nUsage: grpcplay version\n```\n\nNo flags.\n") {
		t.Errorf("a command without flags:\n%s", doc)
	}
}

func firstDiff(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := range min(len(al), len(bl)) {
		if al[i] != bl[i] {
			return fmt.Sprintf("line %d:\n  file: %s\n  help: %s", i+1, al[i], bl[i])
		}
	}
	return "one is a prefix of the other"
}
