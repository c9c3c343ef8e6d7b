package docstest

import (
	"fmt"
	"os/exec"
	"strings"
)

// A plan is one Markdown file's runnable blocks as a single bash script,
// run top to bottom as a reader would in one shell.
type plan struct {
	script     string
	background []string      // the commands started with &, by index
	checks     []check       // the console steps whose output is compared
	skipped    []block       // with the reason in their directive
	missing    []block       // that need a tool this machine lacks
	blockAt    map[int]block // by line, for reports
}

type check struct {
	block block
	step  step
}

// The script's helpers. Job control gives each background job its own
// process group, as a terminal does, so that Ctrl-C (SIGINT) and the final
// SIGTERM reach a server started by `go run` too, not only the go command.
const prelude = `set -euo pipefail
set -m
ip link set lo up
docstest_signal() {
	local jobs
	jobs=$(jobs -p)
	if [ -n "$jobs" ]; then
		for j in $jobs; do kill "-$1" -- "-$j" 2>/dev/null || true; done
		wait || true
	fi
}
trap 'docstest_signal TERM' EXIT
cd "$DOCSTEST_WORK"
`

func newPlan(bs []block) (*plan, error) {
	p := &plan{blockAt: map[int]block{}}
	var s strings.Builder
	s.WriteString(prelude)
	for _, b := range bs {
		if b.lang != "sh" && b.lang != "console" {
			continue
		}
		if reason, ok := strings.CutPrefix(b.directive, "skip:"); ok {
			b.directive = strings.TrimSpace(reason)
			if b.directive == "" {
				return nil, fmt.Errorf("line %d: skip without a reason (want skip: WHY)", b.line)
			}
			p.skipped = append(p.skipped, b)
			continue
		}
		if b.directive == dockerDirective {
			b.directive = "needs the Docker engine; the Docker tests (deploy/) run it as written"
			p.skipped = append(p.skipped, b)
			continue
		}
		if tool, ok := strings.CutPrefix(b.directive, "needs:"); ok {
			tool = strings.TrimSpace(tool)
			if _, err := exec.LookPath(tool); err != nil {
				b.directive = tool + " is not installed"
				p.missing = append(p.missing, b)
				continue
			}
			b.directive = ""
		}
		p.blockAt[b.line] = b
		fmt.Fprintf(&s, "\n# line %d\necho %d > \"$DOCSTEST/at\"\n", b.line, b.line)
		var err error
		switch b.directive {
		case "":
		case "after ctrl-c":
			s.WriteString("docstest_signal INT\n")
		case "background":
		default:
			err = fmt.Errorf("line %d: unknown directive %q (want skip: WHY, needs: TOOL, docker, background or after ctrl-c)", b.line, b.directive)
		}
		if err != nil {
			return nil, err
		}
		if b.lang == "console" {
			p.addTranscript(&s, b)
		} else {
			p.addScript(&s, b)
		}
	}
	p.script = s.String()
	return p, nil
}

func (p *plan) addScript(s *strings.Builder, b block) {
	for _, cmd := range commands(b.text) {
		code, bg := inBackground(cmd)
		if !bg && b.directive != "background" {
			s.WriteString(cmd + "\n")
			continue
		}
		n := len(p.background)
		p.background = append(p.background, strings.TrimSpace(code))
		// The server's output goes to a FIFO that the test reads; it
		// answers on ready$n once the server says it listens.
		fmt.Fprintf(s, "%s > \"$DOCSTEST/bg%d\" 2>&1 &\nread -r _ < \"$DOCSTEST/ready%d\"\n", code, n, n)
	}
}

func (p *plan) addTranscript(s *strings.Builder, b block) {
	for _, st := range transcript(b.text) {
		n := len(p.checks)
		p.checks = append(p.checks, check{block: b, step: st})
		fmt.Fprintf(s, "{ %s\n} > \"$DOCSTEST/out%d\" 2>&1 || true\n", st.command, n)
	}
}
