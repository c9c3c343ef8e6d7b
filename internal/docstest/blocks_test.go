package docstest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// shownOnly are the fences of text a reader reads but does not type: a
// diagram, a command's help, a file's contents shown.
var shownOnly = map[string]bool{"": true, "text": true}

// Every block a reader types runs as written (sh, console) or says why not:
// a block in another language a reader would type (go, promql, ...) needs a
// skip with its reason, and a shell block fenced as bash or shell, which the
// test would not run, must be fenced sh.
func TestEveryTypedBlockRunsOrSaysWhy(t *testing.T) {
	for _, file := range markdownFiles(t) {
		name, _ := filepath.Rel(repo, file)
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		bs := blocks(string(text))
		if _, err := newPlan(bs); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, b := range bs {
			switch {
			case b.lang == "sh" || b.lang == "console" || shownOnly[b.lang]:
			case b.lang == "bash" || strings.HasPrefix(b.lang, "shell"):
				t.Errorf("%s:%d: fence it sh (or console for a transcript), which the docs test runs", name, b.line)
			case !strings.HasPrefix(b.directive, "skip:"):
				t.Errorf("%s:%d: a %s block that nothing runs: mark it <!-- docstest: skip: WHY -->", name, b.line, b.lang)
			}
		}
	}
}

func TestDockerBlocks(t *testing.T) {
	got := DockerBlocks("<!-- docstest: docker -->\n```sh\n# a comment\ndocker-compose up -d --build   # start\ndocker-compose down\n```\n\n```sh\nls\n```\n")
	if len(got) != 1 || got[0].Line != 2 || strings.Join(got[0].Commands, "|") != "docker-compose up -d --build   # start|docker-compose down" {
		t.Errorf("DockerBlocks = %+v", got)
	}
}
