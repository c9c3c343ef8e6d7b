package docstest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// ready is what each server logs once it listens: serve's banner, or the
// line of backend and frontend.
var ready = regexp.MustCompile(`: open http|backend listening|frontend listening`)

// A server the text starts in the background, seen through its FIFO.
type server struct {
	command string
	out     *os.File
	ready   *os.File
	mu      sync.Mutex
	log     bytes.Buffer
	done    chan struct{}
}

func (s *server) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return fmt.Sprintf("%s\n%s", s.command, tail(s.log.String(), 30))
}

// follow copies the server's output and answers the script once the
// server listens, or after a minute without (the steps after it then fail,
// with this log in the report).
func (s *server) follow() {
	defer close(s.done)
	answered := sync.OnceFunc(func() { s.ready.WriteString("\n") })
	timer := time.AfterFunc(time.Minute, answered)
	defer timer.Stop()
	sc := bufio.NewScanner(s.out)
	for sc.Scan() {
		s.mu.Lock()
		s.log.WriteString(sc.Text() + "\n")
		s.mu.Unlock()
		if ready.MatchString(sc.Text()) {
			answered()
		}
	}
}

// openFIFO makes a FIFO and opens it read-write: neither the test nor the
// script then blocks in open, and closing it ends a pending read.
func openFIFO(t *testing.T, path string) *os.File {
	t.Helper()
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func startServers(t *testing.T, dir string, commands []string) []*server {
	var servers []*server
	for i, cmd := range commands {
		s := &server{
			command: cmd, done: make(chan struct{}),
			out:   openFIFO(t, filepath.Join(dir, fmt.Sprintf("bg%d", i))),
			ready: openFIFO(t, filepath.Join(dir, fmt.Sprintf("ready%d", i))),
		}
		go s.follow()
		servers = append(servers, s)
	}
	return servers
}

func stopServers(servers []*server) {
	for _, s := range servers {
		s.out.Close()
		s.ready.Close()
		<-s.done
	}
}

// namespaced runs the script in new network and PID namespaces: the text's
// own ports cannot collide with anything else on the machine, and every
// process the script started dies with it.
func namespaced(ctx context.Context, script string) *exec.Cmd {
	args := []string{"--net", "--pid", "--fork", "--kill-child"}
	if os.Geteuid() != 0 {
		args = append([]string{"--user", "--map-root-user"}, args...)
	}
	return exec.CommandContext(ctx, "unshare", append(args, "bash", "-c", script)...)
}

// runFile runs the plan of one Markdown file and checks what it printed.
func runFile(t *testing.T, env []string, name string, p *plan) {
	dir := t.TempDir()
	servers := startServers(t, dir, p.background)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := namespaced(ctx, p.script)
	cmd.Env = append(append(os.Environ(), env...), "DOCSTEST="+dir)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	stopServers(servers)
	if err != nil {
		at, _ := os.ReadFile(filepath.Join(dir, "at"))
		line := strings.TrimSpace(string(at))
		t.Errorf("%s:%s: the block failed: %v\n%s", name, line, err, tail(out.String(), 30))
		for _, s := range servers {
			t.Logf("background: %v", s)
		}
		return
	}
	for i, c := range p.checks {
		got, err := os.ReadFile(filepath.Join(dir, fmt.Sprintf("out%d", i)))
		if errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s:%d: $ %s did not run", name, c.block.line, c.step.command)
			continue
		}
		if lines := outputLines(string(got)); !matchLines(c.step.want, lines) {
			t.Errorf("%s:%d: $ %s\nprinted:\n%s\nthe text shows:\n%s", name, c.block.line, c.step.command,
				strings.Join(lines, "\n"), strings.Join(c.step.want, "\n"))
		}
	}
}

func outputLines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	lines := strings.Split(s, "\n")
	for i := range lines {
		lines[i] = strings.TrimRight(lines[i], " \t\r")
	}
	return lines
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-n):], "\n")
}
