package interop_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	refl "google.golang.org/grpc/reflection/grpc_reflection_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/client"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// What the post's frontend shows: sayHello("Gonzalo"), getAll(10), getStream(5).
type postPage struct {
	Name   string     `json:"name"`
	Items  []jsonItem `json:"items"`
	Items2 []jsonItem `json:"items2"`
}

type jsonItem struct {
	ID   int32  `json:"id"`
	Name string `json:"name"`
}

func wantItems(n int) []jsonItem {
	items := make([]jsonItem, n)
	for i := range items {
		items[i] = jsonItem{ID: int32(i + 1), Name: fmt.Sprintf("name %d", i+1)}
	}
	return items
}

// Python startup and stub generation can take seconds on a loaded machine;
// these bound every wait so that a broken setup fails instead of hanging.
const (
	pythonTimeout = 60 * time.Second
	listenTimeout = 30 * time.Second
)

// findPython returns an interpreter that can import grpc and grpc_tools. The
// one first on PATH is often a pyenv build without them, while Debian's
// python3-grpcio lives under /usr/bin/python3, so several are tried.
var findPython = sync.OnceValues(func() (string, error) {
	var candidates []string
	if p := os.Getenv("GRPCPLAY_PYTHON"); p != "" {
		candidates = append(candidates, p)
	}
	candidates = append(candidates, "python3", "/usr/bin/python3", "/usr/local/bin/python3")
	var tried []string
	for _, c := range candidates {
		path, err := exec.LookPath(c)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), pythonTimeout)
		out, err := exec.CommandContext(ctx, path, "-c", "import grpc, grpc_tools").CombinedOutput()
		cancel()
		if err == nil {
			return path, nil
		}
		tried = append(tried, fmt.Sprintf("%s: %v: %s", path, err, strings.TrimSpace(string(out))))
	}
	return "", fmt.Errorf("no python3 can import grpc and grpc_tools (apt-get install python3-grpcio python3-grpc-tools); tried %q", tried)
})

func requirePython(t *testing.T) string {
	t.Helper()
	py, err := findPython()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	return py
}

// postDir returns a directory holding the post's Python code next to stubs
// generated from our proto with the post's own protoc command.
func postDir(t *testing.T, py string) string {
	t.Helper()
	dir := t.TempDir()
	protoDir, err := filepath.Abs(filepath.Join("..", "api"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), pythonTimeout)
	defer cancel()
	gen := exec.CommandContext(ctx, py, "-m", "grpc_tools.protoc", "-I"+protoDir,
		"--python_out="+dir, "--grpc_python_out="+dir, "api.proto")
	if out, err := gen.CombinedOutput(); err != nil {
		t.Fatalf("generating Python stubs: %v\n%s", err, out)
	}
	sources, err := filepath.Glob(filepath.Join("testdata", "python", "*.py"))
	if err != nil || len(sources) == 0 {
		t.Fatalf("no Python sources in testdata/python: %v", err)
	}
	for _, src := range sources {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, filepath.Base(src)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// pythonEnv keeps Python's gRPC off any proxy, since it honours http_proxy
// even for loopback targets, and keeps bytecode out of the temp directory.
func pythonEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch strings.ToLower(name) {
		case "http_proxy", "https_proxy", "grpc_proxy", "all_proxy", "no_proxy",
			"backend_host", "backend_port", "backend_bind":
			continue
		}
		env = append(env, kv)
	}
	env = append(env, "PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1")
	return append(env, extra...)
}

// startPostServer runs the post's server.py on a free loopback port and
// returns its address once it listens. server.py binds port 0 and prints
// the port it got, so no port is picked and released first.
func startPostServer(t *testing.T) string {
	t.Helper()
	py := requirePython(t)
	dir := postDir(t, py)
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, py, "server.py")
	cmd.Dir = dir
	cmd.Env = pythonEnv("BACKEND_BIND=127.0.0.1", "BACKEND_PORT=0")
	cmd.WaitDelay = 10 * time.Second
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	ports := make(chan string, 1)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if port, ok := strings.CutPrefix(sc.Text(), "listening on "); ok {
				select {
				case ports <- port:
				default:
				}
			}
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-drained
		// Killed by the cancel above, so an error is expected; anything
		// else it printed helps debug a failed test.
		_ = cmd.Wait()
		if t.Failed() && stderr.Len() > 0 {
			t.Logf("server.py stderr:\n%s", stderr.String())
		}
	})
	var port string
	select {
	case port = <-ports:
	case <-drained:
		t.Fatal("server.py exited before listening")
	case <-time.After(listenTimeout):
		t.Fatalf("server.py did not listen within %v", listenTimeout)
	}
	if n, err := strconv.Atoi(port); err != nil || n <= 0 {
		t.Fatalf("server.py reported port %q", port)
	}
	return net.JoinHostPort("127.0.0.1", port)
}

func TestPostClientAgainstOurBackend(t *testing.T) {
	py := requirePython(t)
	dir := postDir(t, py)
	host, port, err := net.SplitHostPort(backendtest.Start(t, backend.Config{}).Addr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), pythonTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "client.py")
	cmd.Dir = dir
	cmd.Env = pythonEnv("BACKEND_HOST="+host, "BACKEND_PORT="+port)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("client.py: %v\n%s", err, stderr.String())
	}
	var got postPage
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("client.py printed %q: %v", out, err)
	}
	want := postPage{Name: "Hello Gonzalo!", Items: wantItems(10), Items2: wantItems(5)}
	if got.Name != want.Name {
		t.Errorf("sayHello = %q, want %q", got.Name, want.Name)
	}
	if !slices.Equal(got.Items, want.Items) {
		t.Errorf("getAll(10) = %v, want %v", got.Items, want.Items)
	}
	if !slices.Equal(got.Items2, want.Items2) {
		t.Errorf("getStream(5) = %v, want %v", got.Items2, want.Items2)
	}
}

func TestOurClientAgainstPostServer(t *testing.T) {
	addr := startPostServer(t)
	c, err := client.New(addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()

	// The post's server has no health service: Unimplemented means reached.
	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready = %v, want nil against a server without health", err)
	}

	hello, err := c.SayHello(ctx, "Gonzalo")
	if err != nil || hello != "Hello Gonzalo!" {
		t.Errorf("SayHello = %q, %v; want %q", hello, err, "Hello Gonzalo!")
	}

	items, err := c.GetAll(ctx, 10)
	if err != nil {
		t.Fatalf("GetAll: %v", err)
	}
	if got := toJSONItems(items); !slices.Equal(got, wantItems(10)) {
		t.Errorf("GetAll(10) = %v, want %v", got, wantItems(10))
	}

	var streamed []*client.Item
	for item, err := range c.GetStream(ctx, 5) {
		if err != nil {
			t.Fatalf("GetStream: %v", err)
		}
		streamed = append(streamed, item)
	}
	if got := toJSONItems(streamed); !slices.Equal(got, wantItems(5)) {
		t.Errorf("GetStream(5) = %v, want %v", got, wantItems(5))
	}

	// Leaving a long stream early cancels it on the Python side too; the
	// connection must stay usable afterwards.
	taken := 0
	for _, err := range c.GetStream(ctx, 1_000_000) {
		if err != nil {
			t.Fatalf("GetStream(1e6): %v", err)
		}
		if taken++; taken == 3 {
			break
		}
	}
	if hello, err := c.SayHello(ctx, "again"); err != nil || hello != "Hello again!" {
		t.Errorf("SayHello after an abandoned stream = %q, %v", hello, err)
	}
}

func toJSONItems(items []*client.Item) []jsonItem {
	out := make([]jsonItem, len(items))
	for i, it := range items {
		out[i] = jsonItem{ID: it.GetId(), Name: it.GetName()}
	}
	return out
}

// This is what `grpcurl -plaintext localhost:50051 list` and `describe api.Api`
// ask for, through the same v1 reflection protocol grpcurl speaks.
// apiMethods are the methods of service api.Api in the file descriptors
// reflection sent.
func apiMethods(t *testing.T, files [][]byte) []string {
	var methods []string
	for _, raw := range files {
		var fd descriptorpb.FileDescriptorProto
		if err := proto.Unmarshal(raw, &fd); err != nil {
			t.Fatal(err)
		}
		if fd.GetPackage() != "api" {
			continue
		}
		for _, svc := range fd.GetService() {
			if svc.GetName() != "Api" {
				continue
			}
			for _, m := range svc.GetMethod() {
				methods = append(methods, m.GetName())
			}
		}
	}
	return methods
}

func TestReflectionListsServices(t *testing.T) {
	conn, err := grpc.NewClient(backendtest.Start(t, backend.Config{}).Addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	stream, err := refl.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		t.Fatal(err)
	}

	if err := stream.Send(&refl.ServerReflectionRequest{
		MessageRequest: &refl.ServerReflectionRequest_ListServices{},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	var services []string
	for _, s := range resp.GetListServicesResponse().GetService() {
		services = append(services, s.GetName())
	}
	for _, want := range []string{"api.Api", "grpc.health.v1.Health"} {
		if !slices.Contains(services, want) {
			t.Errorf("reflection lists %q, missing %q", services, want)
		}
	}

	if err := stream.Send(&refl.ServerReflectionRequest{
		MessageRequest: &refl.ServerReflectionRequest_FileContainingSymbol{FileContainingSymbol: "api.Api"},
	}); err != nil {
		t.Fatal(err)
	}
	resp, err = stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	methods := apiMethods(t, resp.GetFileDescriptorResponse().GetFileDescriptorProto())
	var want []string
	for _, m := range api.Api_ServiceDesc.Methods {
		want = append(want, m.MethodName)
	}
	for _, s := range api.Api_ServiceDesc.Streams {
		want = append(want, s.StreamName)
	}
	// The descriptor lists methods in api.proto's order, the ServiceDesc
	// unary ones first: compare them as sets.
	slices.Sort(methods)
	slices.Sort(want)
	if !slices.Equal(methods, want) {
		t.Errorf("reflection describes api.Api with methods %q, want %q", methods, want)
	}
	if err := stream.CloseSend(); err != nil {
		t.Fatal(err)
	}
}
