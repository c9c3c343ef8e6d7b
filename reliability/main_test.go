package reliability_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/frontend"
)

// binary is the grpcplay command, built once for the tests that need a real
// process: only a process can receive SIGTERM or die of kill -9.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "grpcplay-reliability-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "grpcplay")
	build := exec.Command("go", "build", "-o", binary, "github.com/grpcplay/grpcplay/cmd/grpcplay")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		_ = os.RemoveAll(dir)
		os.Exit(1)
	}
	goleak.VerifyTestMain(m, goleak.Cleanup(func(code int) {
		_ = os.RemoveAll(dir)
		os.Exit(code)
	}))
}

// backendProc is a `grpcplay backend` process on a loopback port.
type backendProc struct {
	addr   string
	cmd    *exec.Cmd
	log    *procLog
	exited chan struct{}
	err    error // how the process ended; read after exited is closed
}

// startBackendProc starts `grpcplay backend` on addr ("127.0.0.1:0" for a
// free port, or the address of a stopped one) and waits until it listens.
// Its per-call log lines let a test see which process served calls.
func startBackendProc(t *testing.T, addr string) *backendProc {
	t.Helper()
	log := &procLog{listening: make(chan string, 1)}
	// No metrics or REST port: their defaults are fixed ports, and tests
	// use only ports the kernel picks.
	cmd := exec.Command(binary, "backend", "--grpc-addr", addr, "--metrics-addr", "", "--rest-addr", "", "--grace", "10s", "--log-level", "debug")
	// An empty environment, so that GRPCPLAY_* variables of the machine
	// running the tests change nothing.
	cmd.Env = []string{}
	cmd.Stderr = log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start backend: %v", err)
	}
	p := &backendProc{cmd: cmd, log: log, exited: make(chan struct{})}
	go func() {
		p.err = cmd.Wait()
		close(p.exited)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-p.exited
	})
	select {
	case p.addr = <-log.listening:
	case <-p.exited:
		t.Fatalf("backend on %s exited before it listened: %v\n%s", addr, p.err, log)
	case <-time.After(30 * time.Second):
		t.Fatalf("backend on %s did not say where it listens within 30s\n%s", addr, log)
	}
	return p
}

// signal sends sig and waits up to limit for the process to exit.
func (p *backendProc) signal(t *testing.T, sig syscall.Signal, limit time.Duration) {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("signal %v to backend %s: %v", sig, p.addr, err)
	}
	select {
	case <-p.exited:
	case <-time.After(limit):
		t.Fatalf("backend %s still runs %v after %v\n%s", p.addr, limit, sig, p.log)
	}
}

// procLog keeps a process's log, reports the address it listens on, and
// counts the calls it served (one log line each).
type procLog struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	partial   []byte
	listening chan string
	calls     atomic.Int64
}

var (
	listeningRE = regexp.MustCompile(`msg="backend listening" addr=(\S+)`)
	callRE      = regexp.MustCompile(`msg=call method=/api\.Api/`)
)

func (l *procLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		line := l.partial[:i+1]
		l.partial = l.partial[i+1:]
		if callRE.Match(line) {
			// Calls are counted, not kept: a loaded backend logs thousands.
			l.calls.Add(1)
			continue
		}
		if m := listeningRE.FindSubmatch(line); m != nil {
			select {
			case l.listening <- string(m[1]):
			default:
			}
		}
		if l.buf.Len() < 64<<10 {
			l.buf.Write(line)
		}
	}
	return len(p), nil
}

func (l *procLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// startFrontend serves the real frontend, with its http.Server and its
// timeouts, on a loopback port and returns its base URL.
func startFrontend(t *testing.T, cfg frontend.Config, b frontend.Backend) string {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := frontend.New(cfg, b)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			t.Errorf("frontend shutdown: %v", err)
		}
		if err := <-served; err != nil {
			t.Errorf("frontend Serve: %v", err)
		}
	})
	return "http://" + lis.Addr().String()
}

// newHTTPClient keeps enough idle connections for the load workers, so that
// they reuse connections instead of using up the loopback's ports.
func newHTTPClient(t *testing.T) *http.Client {
	tr := &http.Transport{MaxIdleConns: 200, MaxIdleConnsPerHost: 200, IdleConnTimeout: time.Minute}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: time.Minute}
}

// getPage fetches url and returns its status and body.
func getPage(ctx context.Context, hc *http.Client, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// load is a bounded load: workers call do in a loop until stop is closed.
// A call in flight when stop closes still finishes and still counts, so
// stopping the load never fails a call.
type load struct {
	requests, failures atomic.Int64
	mu                 sync.Mutex
	errs               []error
	wg                 sync.WaitGroup
}

func startLoad(workers int, stop <-chan struct{}, do func() error) *load {
	l := &load{}
	for range workers {
		l.wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				err := do()
				l.requests.Add(1)
				if err != nil {
					l.failures.Add(1)
					l.mu.Lock()
					if len(l.errs) < 5 {
						l.errs = append(l.errs, err)
					}
					l.mu.Unlock()
				}
			}
		})
	}
	return l
}

// wait waits for the workers and returns the first few errors.
func (l *load) wait() []error {
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.errs
}

// pageOK is one page request that must succeed with the post's greeting.
func pageOK(ctx context.Context, hc *http.Client, url string) error {
	code, body, err := getPage(ctx, hc, url)
	if err != nil {
		return err
	}
	if code != http.StatusOK {
		return fmt.Errorf("GET %s: status %d: %.300s", url, code, body)
	}
	if !bytes.Contains([]byte(body), []byte("Hello Gonzalo!")) {
		return fmt.Errorf("GET %s: 200 without the greeting: %.300s", url, body)
	}
	return nil
}
