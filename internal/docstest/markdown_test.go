package docstest

import (
	"slices"
	"strings"
	"testing"
)

func TestBlocksAndDirectives(t *testing.T) {
	md := strings.Join([]string{
		"text", "<!-- docstest: skip: needs Docker -->", "```sh", "docker build .", "```",
		"<!-- docstest: background -->", "", "````console", "$ grpcplay call hello A", "Hello A!", "````",
		"between", "```sh", "a \\", "  b &  # comment", "# only a comment", "c && d", "```",
	}, "\n")
	bs := blocks(md)
	if len(bs) != 3 {
		t.Fatalf("%d blocks, want 3: %+v", len(bs), bs)
	}
	if bs[0].directive != "skip: needs Docker" || bs[0].line != 3 || bs[0].lang != "sh" {
		t.Errorf("first block %+v", bs[0])
	}
	if bs[1].directive != "background" || bs[1].lang != "console" {
		t.Errorf("second block %+v", bs[1])
	}
	if bs[2].directive != "" {
		t.Errorf("a directive reached past text: %+v", bs[2])
	}
	cmds := commands(bs[2].text)
	if !slices.Equal(cmds, []string{"a \\\n  b &  # comment", "c && d"}) {
		t.Errorf("commands %q", cmds)
	}
	if code, bg := inBackground(cmds[0]); !bg || strings.TrimSpace(code) != "a \\\n  b" {
		t.Errorf("inBackground(%q) = %q, %v", cmds[0], code, bg)
	}
	if _, bg := inBackground(cmds[1]); bg {
		t.Errorf("%q is not in the background", cmds[1])
	}
}

func TestMatchLines(t *testing.T) {
	for _, tc := range []struct {
		want, got string
		ok        bool
	}{
		{"a\nb", "a\nb", true},
		{"a\nb", "a\nb\nc", false},
		{"a\n...\nc", "a\nx\ny\nc", true},
		{"a\n...\nc", "a\nc", true},
		{"x: ...!", "x: hello!", true},
		{"x: ...!", "y: hello!", false},
		{"", "", true},
		{"", "something", false},
	} {
		if got := matchLines(outputLines(tc.want), outputLines(tc.got)); got != tc.ok {
			t.Errorf("matchLines(%q, %q) = %v", tc.want, tc.got, got)
		}
	}
}
