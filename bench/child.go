package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// A run with a link or --apart starts the servers, and the delay proxy, in
// processes of their own: this same executable started again with childEnv
// set, the way Docker's reexec package does, so that the bench needs no
// second binary. The child reads its settings from childSpecEnv, answers
// one JSON line on stdout when ready, and exits when its stdin closes,
// which happens when the bench ends, however it ends.
const (
	childEnv     = "GRPCPLAY_BENCH_CHILD"
	childSpecEnv = "GRPCPLAY_BENCH_CHILD_SPEC"
)

const (
	roleServer = "server"
	roleProxy  = "proxy"
)

// childSpec is what a child is told.
type childSpec struct {
	Host string `json:"host,omitempty"` // server: the address to listen on
	CPU  int    `json:"cpu"`            // the core to pin to; -1: none
	// Upstreams, for the proxy: where each inherited listener forwards.
	Upstreams []string `json:"upstreams,omitempty"`
	Window    int      `json:"window,omitempty"`
}

// serverAddrs is the server child's ready line.
type serverAddrs struct {
	GRPC   string `json:"grpc"`
	REST   string `json:"rest"`
	RESTH2 string `json:"rest_h2"`
	TLS    string `json:"rest_tls"`
	Cert   []byte `json:"cert_pem"`
	Plain  string `json:"rest_plain"`
	Probe  string `json:"probe"`
}

func init() {
	if role := os.Getenv(childEnv); role != "" {
		os.Exit(runChild(role))
	}
}

func runChild(role string) int {
	var spec childSpec
	err := json.Unmarshal([]byte(os.Getenv(childSpecEnv)), &spec)
	if err == nil && spec.CPU >= 0 {
		_, err = pinTo(spec.CPU)
	}
	if err == nil {
		switch role {
		case roleServer:
			err = childServer(spec)
		case roleProxy:
			err = childProxy(spec)
		default:
			err = fmt.Errorf("unknown role %q", role)
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "bench %s: %v\n", role, err)
		return 1
	}
	return 0
}

func childServer(spec childSpec) error {
	l, err := startLocal(spec.Host, nil)
	if err != nil {
		return err
	}
	probe, err := net.Listen("tcp", net.JoinHostPort(spec.Host, "0"))
	if err != nil {
		return errors.Join(err, l.Close())
	}
	go serveProbe(probe)
	host := func(u string) string { return strings.TrimPrefix(u, "http://") }
	ready := serverAddrs{GRPC: l.GRPCAddr, REST: host(l.RESTURL), RESTH2: host(l.RESTH2URL),
		TLS: strings.TrimPrefix(l.RESTTLSURL, "https://"), Cert: l.CertPEM, Probe: probe.Addr().String(),
		Plain: host(l.PlainURL)}
	enc := json.NewEncoder(os.Stdout)
	if err := enc.Encode(ready); err != nil {
		return err
	}
	// Each line "counts" is answered with the Service's calls so far.
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if err := enc.Encode(l.counter.snapshot()); err != nil {
			break
		}
	}
	probe.Close()
	return l.Close()
}

// childProxy forwards each inherited listener (fd 3 on) to its upstream,
// with the delay that stdin's lines set: "oneway NANOSECONDS", each
// acknowledged by a line "ok".
func childProxy(spec childSpec) error {
	// Nanosleep's wake-ups may be late by the timer slack, 50µs by default:
	// a quarter of lan's round trip.
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0); err != nil {
		return err
	}
	var proxies []*delayProxy
	for i, up := range spec.Upstreams {
		f := os.NewFile(uintptr(3+i), "listener")
		lis, err := net.FileListener(f)
		f.Close()
		if err != nil {
			return err
		}
		p := newDelayProxy(lis, up, nil, spec.Window)
		proxies = append(proxies, p)
		go p.serve()
	}
	defer func() {
		for _, p := range proxies {
			p.close()
		}
	}()
	fmt.Println(`{"ready":true}`)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		ns, ok := strings.CutPrefix(sc.Text(), "oneway ")
		d, err := strconv.ParseInt(ns, 10, 64)
		if !ok || err != nil {
			return fmt.Errorf("bad line %q", sc.Text())
		}
		for _, p := range proxies {
			p.setOneWay(time.Duration(d))
		}
		fmt.Println("ok")
	}
	return nil
}

// pinned is how a process ran before pinTo.
type pinned struct {
	cpus     unix.CPUSet
	maxProcs int
}

// pinTo pins every thread of this process to one core, and sets GOMAXPROCS
// to 1 as Go itself would for a process started on one core: two Ps on
// one core would spin against each other. Threads made later inherit the
// core from the thread that makes them. It returns how to undo it.
func pinTo(cpu int) (*pinned, error) {
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		return nil, err
	}
	set.Set(cpu)
	if err := setAffinity(&set); err != nil {
		return nil, err
	}
	return &pinned{cpus: old, maxProcs: runtime.GOMAXPROCS(1)}, nil
}

func (p *pinned) undo() error {
	runtime.GOMAXPROCS(p.maxProcs)
	return setAffinity(&p.cpus)
}

func setAffinity(set *unix.CPUSet) error {
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread that exited meanwhile is no error.
		if err := unix.SchedSetaffinity(tid, set); err != nil && !errors.Is(err, unix.ESRCH) {
			return err
		}
	}
	return nil
}

// child is a started child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	done  chan struct{}
}

// startChild starts this executable in role, in network namespace ns when
// it is not empty, with files as fds 3 on.
func startChild(role, ns string, spec childSpec, files []*os.File) (*child, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	raw, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	var cmd *exec.Cmd
	if ns != "" {
		cmd = exec.Command("ip", "netns", "exec", ns, exe)
	} else {
		cmd = exec.Command(exe)
	}
	cmd.Env = append(os.Environ(), childEnv+"="+role, childSpecEnv+"="+string(raw))
	cmd.ExtraFiles = files
	cmd.Stderr = os.Stderr
	// A child outlives no bench: stdin's end tells it to stop, and the
	// kernel kills it if the bench dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	c := &child{cmd: cmd, lines: make(chan string, 64), done: make(chan struct{})}
	if c.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			// Lines answer requests one at a time: the buffer never fills
			// unless a child misbehaves, whose extra lines are dropped.
			select {
			case c.lines <- sc.Text():
			default:
			}
		}
	}()
	return c, nil
}

// line waits for the child's next line of output.
func (c *child) line(ctx context.Context) (string, error) {
	timeout := time.NewTimer(30 * time.Second)
	defer timeout.Stop()
	select {
	case l := <-c.lines:
		return l, nil
	case <-c.done:
		return "", errors.New("the bench's child process ended early")
	case <-timeout.C:
		return "", errors.New("the bench's child process did not answer in 30s")
	case <-ctx.Done():
		return "", ctx.Err()
	}
}

// stop closes the child's stdin, which ends it, and waits; a child that
// does not end within a few seconds is killed.
func (c *child) stop() error {
	c.stdin.Close()
	// Its stdout ends when it exits; Wait must not close the pipe before.
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-c.done:
	case <-t.C:
		c.cmd.Process.Kill()
		<-c.done
	}
	return c.cmd.Wait()
}
