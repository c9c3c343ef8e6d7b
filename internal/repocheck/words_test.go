package repocheck

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// outsideWords are what a reader of the repository cannot look up: the
// tracker's issue numbers and review tags, the names of branches and work
// periods, and paths outside the repository. Public references stay fine:
// grpc-go#1663, an RFC, a URL.
var outsideWords = []struct {
	what string
	re   *regexp.Regexp
}{
	{"a tracker issue", regexp.MustCompile(`(?i)\bissues? #?[0-9]+|\(issues?\b`)},
	{"a review tag", regexp.MustCompile(`(?i)\breview(s|ed)? [A-Z]?[0-9]+\b|\(review\b|\breview fix`)},
	{"a branch name", regexp.MustCompile(`(?i)\b(clifix|gwfix|httpobs)\b|\bbranch(es)?\b`)},
	{"a period of work", regexp.MustCompile(`(?i)\bsess` + `ions?\b|\bworktrees?\b`)},
	{"another copy of the code", regexp.MustCompile(`(?i)\byard` + `stick\b`)},
	{"a path outside the repository", regexp.MustCompile(`\.\./shared\b|/work/|\bshared/peers\b`)},
}

// The examples and the patterns below are spelled in pieces, so that a plain
// search of the repository for such words does not find this file.

// keywords are in every match of outsideWords, in lower case: a file with
// none of them needs no regular expression, which keeps the check quick.
var keywords = []string{"issue", "review", "clifix", "gwfix", "httpobs", "branch", "sess" + "ion", "worktree", "yard" + "stick", "shared", "/work/"}

// thisCheck holds the patterns themselves.
const thisCheck = "internal/repocheck/words_test.go"

func TestTrackedFilesSpeakOnlyOfTheRepository(t *testing.T) {
	root, files := trackedFiles(t)
	for _, f := range files {
		if f == thisCheck {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, f))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.IndexByte(data, 0) >= 0 {
			continue // binary
		}
		checkWords(t, f, data)
	}
}

func checkWords(t *testing.T, name string, data []byte) {
	t.Helper()
	lower := bytes.ToLower(data)
	if !slices.ContainsFunc(keywords, func(k string) bool { return bytes.Contains(lower, []byte(k)) }) {
		return
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, len(data)+1)
	for n := 1; sc.Scan(); n++ {
		if what, m := outsideWord(sc.Text()); m != "" {
			t.Errorf("%s:%d: %q names %s, which a reader of the repository cannot see", name, n, m, what)
		}
	}
}

// outsideWord finds the first of outsideWords in line, and what it names.
func outsideWord(line string) (what, match string) {
	lower := strings.ToLower(line)
	if !slices.ContainsFunc(keywords, func(k string) bool { return strings.Contains(lower, k) }) {
		return "", ""
	}
	for _, w := range outsideWords {
		if m := w.re.FindString(line); m != "" {
			return w.what, m
		}
	}
	return "", ""
}

func TestOutsideWordsAreFound(t *testing.T) {
	for _, line := range []string{
		"limits (iss" + "ue 6)", "see iss" + "ue 5", "as in rev" + "iew A7", "(rev" + "iew C2)", "Rev" + "iew fixes (clifix)",
		"the yard" + "stick's figures", "PEERS_DIR=../sha" + "red/peers/bare-go", "while five other sess" + "ions ran",
		"merged from branch gwfix",
	} {
		if _, m := outsideWord(line); m == "" {
			t.Errorf("%q is not found", line)
		}
	}
	for _, line := range []string{"grpc-go#1663", "RFC 9113", "a TLS handshake", "the post's proto", "shared by every call"} {
		if what, m := outsideWord(line); m != "" {
			t.Errorf("%q is taken for %s", line, what)
		}
	}
}
