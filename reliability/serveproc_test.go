package reliability_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// serveProc is a `grpcplay serve` process with all four faces (page, REST,
// gRPC, metrics) on loopback ports the kernel picked: the thing a hostile
// client meets.
type serveProc struct {
	page, rest, grpc, metrics string // base URLs and the gRPC host:port
	cmd                       *exec.Cmd
	stdout                    lockedBuffer
	stderr                    lockedBuffer
	exited                    chan struct{}
	err                       error // how the process ended; read after exited is closed
}

var bannerRE = regexp.MustCompile(`open (http://\S+) \(gRPC backend on (\S+), [^;]*; REST/JSON on (http://\S+); metrics on (http://\S+)/metrics\)`)

// startServe starts `grpcplay serve` with extra flags and waits until its
// banner says where each face listens.
func startServe(t *testing.T, extra ...string) *serveProc {
	t.Helper()
	return startServeLimited(t, [2]int{}, extra...)
}

// startServeLimited is startServe in a process whose descriptor limit is
// soft, hard (0: the test's own), set by prlimit, which then runs grpcplay
// in its own place: the process is grpcplay's.
func startServeLimited(t *testing.T, nofile [2]int, extra ...string) *serveProc {
	t.Helper()
	args := append([]string{"serve",
		"--grpc-addr", "127.0.0.1:0", "--http-addr", "127.0.0.1:0",
		"--rest-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0",
		"--log-level", "warn"}, extra...)
	cmd := exec.Command(binary, args...)
	if nofile[1] > 0 {
		cmd = exec.Command("prlimit", append([]string{fmt.Sprintf("--nofile=%d:%d", nofile[0], nofile[1]), binary}, args...)...)
	}
	p := &serveProc{}
	p.run(t, cmd)
	deadline := time.After(30 * time.Second)
	for {
		// Taken before the check, so that a write in between still wakes us.
		wrote := p.stdout.written()
		if m := bannerRE.FindStringSubmatch(p.stdout.String()); m != nil {
			p.page, p.grpc, p.rest, p.metrics = m[1], m[2], m[3], m[4]
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("serve exited before it listened: %v\n%s", p.err, p.stderr.String())
		case <-deadline:
			t.Fatalf("serve printed no banner within 30s\nstdout: %s\nstderr: %s", p.stdout.String(), p.stderr.String())
		case <-wrote:
		}
	}
}

// run starts cmd as p's process, with an empty environment, so that
// GRPCPLAY_* variables of the machine running the tests change nothing; the
// test's cleanup kills it.
func (p *serveProc) run(t *testing.T, cmd *exec.Cmd) {
	t.Helper()
	p.cmd, p.exited = cmd, make(chan struct{})
	p.cmd.Env = []string{}
	p.cmd.Stdout = &p.stdout
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start %v: %v", cmd.Args, err)
	}
	go func() {
		p.err = p.cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
}

// waitForLog waits until p's log (stderr) matches re.
func (p *serveProc) waitForLog(t *testing.T, re *regexp.Regexp) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		wrote := p.stderr.written()
		if re.MatchString(p.stderr.String()) {
			return
		}
		select {
		case <-p.exited:
			t.Fatalf("%v exited before it logged %s: %v\n%s", p.cmd.Args, re, p.err, p.stderr.String())
		case <-deadline:
			t.Fatalf("%v did not log %s within 30s\n%s", p.cmd.Args, re, p.stderr.String())
		case <-wrote:
		}
	}
}

// startApart starts `grpcplay backend` and `grpcplay frontend` as two
// processes, as a deployment runs them, the frontend calling the backend
// over gRPC. They listen on ip, a loopback address of the test's own, so
// that their fixed ports cannot collide with another test's. The returned
// serveProc is the backend's process, with the frontend's page.
func startApart(t *testing.T, ip string, backendFlags ...string) *serveProc {
	t.Helper()
	p := &serveProc{grpc: ip + ":50051", rest: "http://" + ip + ":8080", metrics: "http://" + ip + ":9464", page: "http://" + ip + ":5000"}
	p.run(t, exec.Command(binary, append([]string{"backend", "--grpc-addr", p.grpc,
		"--rest-addr", ip + ":8080", "--metrics-addr", ip + ":9464", "--log-level", "info"}, backendFlags...)...))
	p.waitForLog(t, regexp.MustCompile(`msg="backend listening"`))
	frontend := &serveProc{}
	frontend.run(t, exec.Command(binary, "frontend", "--backend", p.grpc, "--http-addr", ip+":5000", "--log-level", "info"))
	frontend.waitForLog(t, regexp.MustCompile(`msg="frontend listening"`))
	return p
}

// fds is how many descriptors the process has open now.
func (p *serveProc) fds(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/fd")
	if err != nil {
		t.Fatalf("descriptors of serve: %v", err)
	}
	return len(entries)
}

// status reads one "Name: value kB" field of /proc/PID/status, in bytes:
// VmRSS is the resident set now, VmHWM its peak since the process started.
func (p *serveProc) status(t *testing.T, field string) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/status")
	if err != nil {
		t.Fatalf("status of serve: %v", err)
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, field+":"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				t.Fatalf("%s of serve: %q: %v", field, rest, err)
			}
			return kb << 10
		}
	}
	t.Fatalf("no %s in /proc/PID/status", field)
	return 0
}

// lockedBuffer is an output a process writes while a test reads it, with a
// signal on every write so that the reader waits on output, not on a clock.
type lockedBuffer struct {
	mu     sync.Mutex
	buf    bytes.Buffer
	notify chan struct{}
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() < 1<<20 {
		b.buf.Write(p)
	}
	if b.notify != nil {
		close(b.notify)
		b.notify = nil
	}
	return len(p), nil
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// written is closed at the next write.
func (b *lockedBuffer) written() <-chan struct{} {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.notify == nil {
		b.notify = make(chan struct{})
	}
	return b.notify
}
