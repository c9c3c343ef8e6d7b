package repocheck

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// clientProgram is the smallest program of a client/ user.
const clientProgram = `package main

import (
	"context"
	"fmt"

	"github.com/grpcplay/grpcplay/client"
)

func main() {
	c, err := client.New("localhost:50051")
	if err != nil {
		panic(err)
	}
	defer c.Close()
	fmt.Println(c.SayHello(context.Background(), "Gonzalo"))
}
`

// clientOnlyModule writes a module of its own that uses client/ from this
// repository, as a library user's would, and returns its directory and the
// environment in which the go command resolves it from the module cache
// alone, without the network.
func clientOnlyModule(t *testing.T, root string) (dir string, env []string) {
	t.Helper()
	dir = t.TempDir()
	goMod := "module example.com/clientonly\n\ngo 1.26.0\n\n" +
		"require github.com/grpcplay/grpcplay v0.0.0\n\n" +
		"replace github.com/grpcplay/grpcplay => " + root + "\n"
	sums, err := os.ReadFile(filepath.Join(root, "go.sum"))
	if err != nil {
		t.Fatal(err)
	}
	for name, text := range map[string]string{"go.mod": goMod, "go.sum": string(sums), "main.go": clientProgram} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// Every module the user's graph needs is one this repository's own
	// build already fetched.
	env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOPROXY=off", "GOWORK=off")
	return dir, env
}

func goOutput(t *testing.T, dir string, env []string, args ...string) []string {
	t.Helper()
	cmd := exec.Command("go", args...)
	cmd.Dir, cmd.Env = dir, env
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if exit, ok := err.(*exec.ExitError); ok {
			stderr = string(exit.Stderr)
		}
		// A module the cache lacks: go mod download fetches it. As the
		// browser tests do, a skip on a laptop and a failure in CI.
		if strings.Contains(stderr, "GOPROXY=off") && os.Getenv("CI") == "" {
			t.Skipf("go %s needs a module the cache lacks (run go mod download): %s", strings.Join(args, " "), stderr)
		}
		t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	return strings.Fields(string(out))
}

// A program that imports only client/ links the client, the generated
// messages and gRPC: no grpc-gateway (the REST face's generated code is in
// api/apigw) and nothing of the servers.
func TestClientLinksNoServerCode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command; not in -short")
	}
	root, _ := trackedFiles(t)
	dir, env := clientOnlyModule(t, root)
	// The codec is the client's as much as the server's.
	allowed := []string{"github.com/grpcplay/grpcplay/api", "github.com/grpcplay/grpcplay/client", "github.com/grpcplay/grpcplay/internal/vtcodec"}
	for _, pkg := range goOutput(t, dir, env, "list", "-deps", ".") {
		switch {
		case strings.Contains(pkg, "grpc-gateway"):
			t.Errorf("a client-only program links %s: keep grpc-gateway's generated code out of api/ and client/", pkg)
		case strings.HasPrefix(pkg, "github.com/grpcplay/grpcplay/") && !slices.Contains(allowed, pkg):
			t.Errorf("a client-only program links %s: client/ may import only %s", pkg, strings.Join(allowed, ", "))
		}
	}
}

// The tools (buf, the protoc plugins, staticcheck, grpcurl) are pinned in
// tools/go.mod, a module of their own, so that none of them reaches the
// module graph of a program that uses client/.
func TestClientUsersInheritNoTools(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the go command; not in -short")
	}
	root, _ := trackedFiles(t)
	product := readGoMod(t, root, "go.mod")
	if len(product.Tool) > 0 {
		t.Errorf("go.mod pins the tool %s: pin tools in tools/go.mod (go get -tool -modfile=tools/go.mod ...)", product.Tool[0].Path)
	}
	tools := readGoMod(t, root, filepath.Join("tools", "go.mod"))
	if len(tools.Tool) == 0 {
		t.Fatal("tools/go.mod pins no tool")
	}
	dir, env := clientOnlyModule(t, root)
	graph := goOutput(t, dir, env, "list", "-m", "-f", "{{.Path}}", "all")
	toolOnly := tools.toolOnlyModules(product)
	if len(toolOnly) == 0 {
		t.Fatal("found no module that only the tools need: is tools/go.mod read right?")
	}
	for _, mod := range toolOnly {
		if slices.Contains(graph, mod) {
			t.Errorf("the module graph of a client/ user holds %s, a tool's module", mod)
		}
	}
}

// goMod is what `go mod edit -json` says of a go.mod.
type goMod struct {
	Require []struct{ Path string }
	Tool    []struct{ Path string }
}

func readGoMod(t *testing.T, root, file string) goMod {
	t.Helper()
	cmd := exec.Command("go", "mod", "edit", "-json", file)
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go mod edit -json %s: %v", file, err)
	}
	var m goMod
	if err := json.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m goMod) requires(mod string) bool {
	return slices.ContainsFunc(m.Require, func(r struct{ Path string }) bool { return r.Path == mod })
}

// toolOnlyModules are the modules of m's tools that product does not
// require: google.golang.org/protobuf gives protoc-gen-go, but the product
// needs it too.
func (m goMod) toolOnlyModules(product goMod) []string {
	var mods []string
	for _, tool := range m.Tool {
		owner := ""
		for _, r := range m.Require {
			if strings.HasPrefix(tool.Path+"/", r.Path+"/") && len(r.Path) > len(owner) {
				owner = r.Path
			}
		}
		if owner != "" && !product.requires(owner) && !slices.Contains(mods, owner) {
			mods = append(mods, owner)
		}
	}
	return mods
}
