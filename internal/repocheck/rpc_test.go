package repocheck

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"unicode"

	"sigs.k8s.io/yaml"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/client"
)

// Every RPC of api.proto is served end to end: a REST rule in
// api/gateway.yaml, a method of client.Client, and tests of its own:
// Test<Name> in backend/, TestClient<Name> in client/, TestREST<Name> in
// gateway/. docs/api.md, "Add an RPC",
// lists the steps; this names the one left out.
func TestEveryRPCIsServedEndToEnd(t *testing.T) {
	root, _ := trackedFiles(t)
	rules := restRules(t, filepath.Join(root, "api", "gateway.yaml"))
	tests := testFiles(t, filepath.Join(root, "backend"))
	clientTests := testFiles(t, filepath.Join(root, "client"))
	restTests := testFiles(t, filepath.Join(root, "gateway"))
	clientType := reflect.TypeFor[*client.Client]()
	for _, rpc := range rpcNames() {
		goName := string(unicode.ToUpper(rune(rpc[0]))) + rpc[1:]
		if !rules[api.Api_ServiceDesc.ServiceName+"."+rpc] {
			t.Errorf("RPC %s has no REST rule: add one to api/gateway.yaml (selector: %s.%s), then go generate ./api", rpc, api.Api_ServiceDesc.ServiceName, rpc)
		}
		if _, ok := clientType.MethodByName(goName); !ok {
			t.Errorf("RPC %s has no client method: add (*client.Client).%s to client/client.go", rpc, goName)
		}
		if !hasTestNamed(tests, goName) {
			t.Errorf("RPC %s has no test of its own: add func Test%s to a test file of backend/", rpc, goName)
		}
		if !hasTestNamed(clientTests, "Client"+goName) {
			t.Errorf("RPC %s has no client test: add func TestClient%s to a test file of client/", rpc, goName)
		}
		if !hasTestNamed(restTests, "REST"+goName) {
			t.Errorf("RPC %s has no REST test: add func TestREST%s to a test file of gateway/", rpc, goName)
		}
	}
}

// rpcNames are the methods of api.Api, as the generated code has them.
func rpcNames() []string {
	var names []string
	for _, m := range api.Api_ServiceDesc.Methods {
		names = append(names, m.MethodName)
	}
	for _, s := range api.Api_ServiceDesc.Streams {
		names = append(names, s.StreamName)
	}
	return names
}

// restRules returns the selectors of gateway.yaml's HTTP rules.
func restRules(t *testing.T, file string) map[string]bool {
	t.Helper()
	text, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var config struct {
		HTTP struct {
			Rules []struct {
				Selector string `json:"selector"`
			} `json:"rules"`
		} `json:"http"`
	}
	if err := yaml.Unmarshal(text, &config); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	rules := map[string]bool{}
	for _, r := range config.HTTP.Rules {
		rules[r.Selector] = true
	}
	return rules
}

// testFiles returns the text of dir's test files.
func testFiles(t *testing.T, dir string) string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no test files in %s: %v", dir, err)
	}
	var all strings.Builder
	for _, f := range files {
		text, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		all.Write(text)
	}
	return all.String()
}

// hasTestNamed reports whether tests has func TestNAME, alone or followed
// by more words (TestGetStreamStopsAtDeadline is one of getStream's).
func hasTestNamed(tests, goName string) bool {
	return regexp.MustCompile(`(?m)^func Test` + goName + `(\(|[A-Z_0-9])`).MatchString(tests)
}
