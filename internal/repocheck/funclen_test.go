package repocheck

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// maxFuncLines is the longest a hand-written function may be. A function's
// length is counted in lines from its func keyword to its closing brace,
// both included, comments and blank lines too: what a reader must hold on
// one screen. Function literals count towards the function they are in.
// Generated files (a "// Code generated ... DO NOT EDIT." line, as go
// generate writes) are not counted.
const maxFuncLines = 60

// generated is the line the Go tools write at the top of generated code.
var generated = regexp.MustCompile(`(?m)^// Code generated .* DO NOT EDIT\.$`)

type funcLen struct {
	name  string // file:Func, or file:Type.Method
	lines int
}

func TestNoFunctionIsLongerThanMax(t *testing.T) {
	funcs := handWrittenFuncs(t)
	var total, longest int
	for _, f := range funcs {
		total += f.lines
		longest = max(longest, f.lines)
		if f.lines > maxFuncLines {
			t.Errorf("%s is %d lines long; split it into named steps of at most %d", f.name, f.lines, maxFuncLines)
		}
	}
	if len(funcs) > 0 {
		t.Logf("%d hand-written functions: mean %.1f lines, longest %d", len(funcs), float64(total)/float64(len(funcs)), longest)
	}
}

// handWrittenFuncs measures every function and method declared in the
// tracked, hand-written Go files.
func handWrittenFuncs(t *testing.T) []funcLen {
	t.Helper()
	root, files := trackedFiles(t)
	var funcs []funcLen
	for _, name := range files {
		if !strings.HasSuffix(name, ".go") {
			continue
		}
		src, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		if generated.Match(src) {
			continue
		}
		fset := token.NewFileSet()
		file, err := parser.ParseFile(fset, name, src, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range file.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Body != nil {
				lines := fset.Position(fd.End()).Line - fset.Position(fd.Type.Func).Line + 1
				funcs = append(funcs, funcLen{name + ":" + funcName(fd), lines})
			}
		}
	}
	slices.SortFunc(funcs, func(a, b funcLen) int { return b.lines - a.lines })
	return funcs
}

// funcName is Func, or Type.Method.
func funcName(fd *ast.FuncDecl) string {
	if fd.Recv == nil || len(fd.Recv.List) == 0 {
		return fd.Name.Name
	}
	typ := fd.Recv.List[0].Type
	if star, ok := typ.(*ast.StarExpr); ok {
		typ = star.X
	}
	if index, ok := typ.(*ast.IndexExpr); ok {
		typ = index.X
	}
	if id, ok := typ.(*ast.Ident); ok {
		return id.Name + "." + fd.Name.Name
	}
	return fd.Name.Name
}
