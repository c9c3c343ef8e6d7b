// Package configdoc renders docs/configuration.md from the grpcplay binary's
// own `COMMAND --help` output, so that the reference cannot drift from the
// flags: a test fails when the committed file and the binary disagree, and
// `go generate ./internal/configdoc` rewrites it.
package configdoc

import (
	"bytes"
	"context"
	_ "embed"
	"fmt"
	"os/exec"
	"regexp"
	"strings"
	"time"
)

//go:generate go run ../cmd/configdoc -o ../../docs/configuration.md

// Commands are grpcplay's commands, in the order the reference lists them.
var Commands = []string{"serve", "backend", "frontend", "call", "bench", "healthcheck", "version"}

//go:embed header.md
var header string

// Help runs `bin COMMAND --help` for every command and returns what each
// printed.
func Help(ctx context.Context, bin string) (map[string]string, error) {
	help := make(map[string]string, len(Commands))
	for _, command := range Commands {
		ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		out, err := exec.CommandContext(ctx, bin, command, "--help").CombinedOutput()
		cancel()
		if err != nil {
			return nil, fmt.Errorf("%s %s --help: %v\n%s", bin, command, err, out)
		}
		help[command] = string(out)
	}
	return help, nil
}

// Render returns the reference for the commands' help texts.
func Render(help map[string]string) []byte {
	var b bytes.Buffer
	b.WriteString(header)
	for _, command := range Commands {
		fmt.Fprintf(&b, "\n## grpcplay %s\n\n", command)
		purpose, usage, flags, ok := parse(help[command])
		if !ok {
			// A help text in another shape still goes in, as it is.
			fmt.Fprintf(&b, "```\n%s\n```\n", strings.TrimRight(help[command], "\n"))
			continue
		}
		if purpose != "" {
			fmt.Fprintf(&b, "%s\n\n", purpose)
		}
		fmt.Fprintf(&b, "```\n%s\n```\n\n", usage)
		if len(flags) == 0 {
			b.WriteString("No flags.\n")
			continue
		}
		b.WriteString("| flag | environment | default | what it is for |\n|---|---|---|---|\n")
		for _, f := range flags {
			fmt.Fprintf(&b, "| `%s`%s | %s | %s | %s |\n", f.name, typeOf(f), code(f.env), code(f.def), cell(f.usage))
		}
	}
	return b.Bytes()
}

type flagDoc struct{ name, kind, usage, env, def string }

var (
	flagLine   = regexp.MustCompile(`^  (--?[^\s-]\S*)(?: (\S+))?(?:\t(.*))?$`)
	purposeOf  = regexp.MustCompile(`^grpcplay \S+: (.+)$`)
	envNote    = regexp.MustCompile(` \(env ([^)]*)\)`)
	defaultEnd = regexp.MustCompile(` \(default (.*)\)$`)
)

// parse reads a command's help: a line of purpose ("grpcplay NAME: what it
// does."), the usage, then, unless the command has none, "Flags:" and the
// flag package's PrintDefaults layout, "  --name type" and a tab-indented
// description per flag.
func parse(help string) (purpose, usage string, flags []flagDoc, ok bool) {
	lines := strings.Split(strings.TrimRight(help, "\n"), "\n")
	i := 0
	if m := purposeOf.FindStringSubmatch(lines[0]); m != nil {
		purpose = sentence(m[1])
		i++
	}
	for ; i < len(lines) && lines[i] != "Flags:"; i++ {
		if strings.TrimSpace(lines[i]) != "" {
			usage = strings.TrimSpace(usage + "\n" + lines[i])
		}
	}
	if usage == "" {
		return "", "", nil, false
	}
	if i == len(lines) {
		return purpose, usage, nil, true
	}
	for _, line := range lines[i+1:] {
		if m := flagLine.FindStringSubmatch(line); m != nil {
			flags = append(flags, flagDoc{name: m[1], kind: m[2], usage: m[3]})
			continue
		}
		text, isUsage := strings.CutPrefix(line, "    \t")
		if !isUsage || len(flags) == 0 {
			return "", "", nil, false
		}
		f := &flags[len(flags)-1]
		f.usage = strings.TrimSpace(f.usage + " " + text)
	}
	for i := range flags {
		f := &flags[i]
		if m := defaultEnd.FindStringSubmatch(f.usage); m != nil {
			f.def, f.usage = m[1], strings.TrimSuffix(f.usage, m[0])
		}
		if m := envNote.FindStringSubmatch(f.usage); m != nil {
			f.env, f.usage = m[1], strings.Replace(f.usage, m[0], "", 1)
		}
	}
	return purpose, usage, flags, true
}

// sentence capitalizes the first letter of s, unless the word is written
// with capitals of its own (gRPC).
func sentence(s string) string {
	if len(s) > 1 && strings.ToLower(s[1:2]) == s[1:2] {
		return strings.ToUpper(s[:1]) + s[1:]
	}
	return s
}

func typeOf(f flagDoc) string {
	if f.kind == "" || f.kind == "value" {
		return ""
	}
	return " " + f.kind
}

func code(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

func cell(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
