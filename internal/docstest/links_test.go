package docstest

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

var (
	markdownLink = regexp.MustCompile(`\]\(([^)\s]+)\)`)
	heading      = regexp.MustCompile(`(?m)^#{1,6} (.+)$`)
)

// Every relative link of the README and docs/ names a file of the
// repository, and every #fragment a heading of its file.
func TestLinksResolve(t *testing.T) {
	for _, file := range markdownFiles(t) {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(repo, file)
		for _, m := range markdownLink.FindAllStringSubmatch(withoutCode(string(text)), -1) {
			checkLink(t, name, m[1])
		}
	}
}

func checkLink(t *testing.T, from, link string) {
	t.Helper()
	if strings.Contains(link, "://") || strings.HasPrefix(link, "mailto:") {
		return
	}
	path, fragment, _ := strings.Cut(link, "#")
	target := filepath.Join(filepath.Dir(from), path)
	if path == "" {
		target = from
	}
	if strings.HasPrefix(filepath.ToSlash(target), "../") {
		t.Errorf("%s: %s points outside the repository", from, link)
		return
	}
	text, err := os.ReadFile(filepath.Join(repo, target))
	switch {
	case err != nil && !isDir(filepath.Join(repo, target)):
		t.Errorf("%s: %s: %v", from, link, err)
	case fragment != "" && !hasAnchor(string(text), fragment):
		t.Errorf("%s: %s: %s has no heading #%s", from, link, target, fragment)
	}
}

func isDir(path string) bool {
	info, err := os.Stat(path)
	return err == nil && info.IsDir()
}

// hasAnchor reports whether a heading of the text gets GitHub's anchor.
func hasAnchor(text, fragment string) bool {
	for _, m := range heading.FindAllStringSubmatch(withoutCode(text), -1) {
		if slug(m[1]) == fragment {
			return true
		}
	}
	return false
}

func slug(title string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(title)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r > 127:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// withoutCode blanks fenced code blocks, whose brackets are not links.
func withoutCode(text string) string {
	var out []string
	inCode := false
	for _, line := range strings.Split(text, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			inCode = !inCode
			continue
		}
		if !inCode {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// No doc points outside the repository, not even in its code blocks: from
// the root a path may not start with ../, and from docs/ not with ../../.
func TestNoPathOutsideTheRepository(t *testing.T) {
	for _, file := range markdownFiles(t) {
		text, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		name, _ := filepath.Rel(repo, file)
		up := regexp.QuoteMeta(strings.Repeat("../", strings.Count(filepath.ToSlash(name), "/")+1))
		if m := regexp.MustCompile(`(^|[\s"'(=:])` + up).FindString(string(text)); m != "" {
			t.Errorf("%s names a path outside the repository (%q), which a clone does not have", name, m)
		}
	}
}

// The README stays one screenful of what a newcomer needs; reference goes to
// docs/.
func TestREADMEStaysShort(t *testing.T) {
	text, err := os.ReadFile(filepath.Join(repo, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	if lines := strings.Count(string(text), "\n"); lines > 250 || len(text) >= 16<<10 {
		t.Errorf("README.md is %d lines and %d bytes; keep it to 250 lines and under 16 KB, and move reference to docs/", lines, len(text))
	}
}
