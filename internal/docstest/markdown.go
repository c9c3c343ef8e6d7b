package docstest

import (
	"bufio"
	"regexp"
	"strings"
)

// A block is one fenced code block of a Markdown file.
type block struct {
	line      int    // of the opening fence, 1-based
	lang      string // the fence's info string: sh, console, go, ...
	text      string
	directive string // from a <!-- docstest: ... --> comment just before it
}

var directiveComment = regexp.MustCompile(`^<!--\s*docstest:\s*(.*?)\s*-->$`)

// blocks returns the fenced code blocks of a Markdown text, in order.
func blocks(markdown string) []block {
	var (
		out       []block
		cur       *block
		body      strings.Builder
		directive string
		fence     string
	)
	sc := bufio.NewScanner(strings.NewReader(markdown))
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		trimmed := strings.TrimSpace(line)
		switch {
		case cur != nil && trimmed == fence:
			cur.text = body.String()
			out = append(out, *cur)
			cur, directive = nil, ""
		case cur != nil:
			body.WriteString(line + "\n")
		case strings.HasPrefix(trimmed, "```"):
			fence = trimmed[:strings.LastIndex(trimmed, "`")+1]
			cur = &block{line: n, lang: strings.TrimSpace(trimmed[len(fence):]), directive: directive}
			body.Reset()
		case directiveComment.MatchString(trimmed):
			directive = directiveComment.FindStringSubmatch(trimmed)[1]
		case trimmed != "":
			directive = ""
		}
	}
	return out
}

// dockerDirective marks a block that needs the Docker engine: the docs test
// leaves it out, and the Docker tests (deploy/) run it as written.
const dockerDirective = "docker"

// DockerBlocks returns the commands of each block of a Markdown text marked
// <!-- docstest: docker -->, in order, with the line of each block.
func DockerBlocks(markdown string) []DockerBlock {
	var out []DockerBlock
	for _, b := range blocks(markdown) {
		if b.directive == dockerDirective {
			out = append(out, DockerBlock{Line: b.line, Commands: commands(b.text)})
		}
	}
	return out
}

// A DockerBlock is a block that the Docker tests run.
type DockerBlock struct {
	Line     int // of the opening fence, 1-based
	Commands []string
}

// A command is one logical line of a shell block: continuation lines
// (ending in a backslash) joined, comments and blank lines left out.
func commands(script string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(script, "\n") {
		if cur.Len() == 0 && (strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#")) {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur.WriteString(line + "\n")
			continue
		}
		cur.WriteString(line)
		out = append(out, cur.String())
		cur.Reset()
	}
	return out
}

// inBackground reports whether a command ends in a lone & (a trailing
// comment aside), and returns it without the &.
func inBackground(command string) (string, bool) {
	code := command
	if i := strings.Index(code, " #"); i >= 0 && !strings.ContainsAny(code[i:], `'"`) {
		code = code[:i]
	}
	code = strings.TrimRight(code, " \t")
	if strings.HasSuffix(code, "&") && !strings.HasSuffix(code, "&&") {
		return strings.TrimSuffix(code, "&"), true
	}
	return command, false
}

// A step of a console block (a transcript): a command and the lines it
// should print.
type step struct {
	command string
	want    []string
}

func transcript(text string) []step {
	var out []step
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if cmd, ok := strings.CutPrefix(line, "$ "); ok {
			out = append(out, step{command: cmd})
		} else if len(out) > 0 {
			out[len(out)-1].want = append(out[len(out)-1].want, line)
		}
	}
	return out
}

// matchLines reports whether got is want, where a want line "..." stands for
// any number of lines and "..." inside a line for any text.
func matchLines(want, got []string) bool {
	if len(want) == 0 {
		return len(got) == 0
	}
	if want[0] == "..." {
		for i := 0; i <= len(got); i++ {
			if matchLines(want[1:], got[i:]) {
				return true
			}
		}
		return false
	}
	return len(got) > 0 && matchLine(want[0], got[0]) && matchLines(want[1:], got[1:])
}

func matchLine(want, got string) bool {
	if !strings.Contains(want, "...") {
		return want == got
	}
	parts := strings.Split(want, "...")
	for i := range parts {
		parts[i] = regexp.QuoteMeta(parts[i])
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".*") + "$").MatchString(got)
}
