package frontend

import (
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/version"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// staticVersions holds a short hash of each static file. Pages link to
// /static/NAME?v=HASH, so browsers may cache the files for long and still
// fetch a new build's files at once.
var staticVersions = hashFiles(staticFiles, "static")

func hashFiles(fsys fs.FS, dir string) map[string]string {
	versions := map[string]string{}
	err := fs.WalkDir(fsys, dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(fsys, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		versions[strings.TrimPrefix(path, dir+"/")] = hex.EncodeToString(sum[:4])
		return nil
	})
	if err != nil {
		panic(err)
	}
	return versions
}

// debugPath is where the debug page is served, when it is.
const debugPath = "/debug"

// navLink is a Page's link in the navigation.
type navLink struct{ Path, Label string }

// mustParsePages parses each page's template once. Every page shares the
// layout and the forms, so each is its own template set; extra are the
// Pages the navigation links to besides the frontend's own; /debug is
// linked only where it is served.
func mustParsePages(extra []Page, debugPage bool) map[string]*template.Template {
	buildVersion := version.String()
	var links []navLink
	for _, p := range extra {
		links = append(links, navLink{p.Path, p.Label})
	}
	if debugPage {
		links = append(links, navLink{debugPath, "Debug"})
	}
	funcs := template.FuncMap{
		"static": func(name string) (string, error) {
			v, ok := staticVersions[name]
			if !ok {
				return "", fmt.Errorf("no static file %q", name)
			}
			return "/static/" + name + "?v=" + v, nil
		},
		"version":  func() string { return buildVersion },
		"links":    func() []navLink { return links },
		"itemRows": itemRows,
	}
	pages := map[string]*template.Template{}
	for _, name := range []string{"index.html", "live.html", "content.html", "error.html", "debug.html"} {
		pages[name] = template.Must(template.New(name).Funcs(funcs).ParseFS(templateFiles,
			"templates/layout.html", "templates/forms.html", "templates/"+name))
	}
	return pages
}

type liveForm struct {
	Length   string
	MaxItems int32
}

type liveData struct {
	Form   liveForm
	Length int32
}

type errorData struct {
	Status   int
	Title    string
	Messages []string
	PageForm *pageForm
	LiveForm *liveForm
}

// staticHandler serves the embedded files without directory listings.
func staticHandler() http.Handler {
	files := http.FileServerFS(staticFiles)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}

// securityHeaders are the headers every response gets. The pages load
// nothing from elsewhere and run no inline script or style, so the policy is
// strict.
var securityHeaders = http.Header{
	"Content-Security-Policy": {"default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'; object-src 'none'"},
	"X-Content-Type-Options":  {"nosniff"},
	// frame-ancestors 'none' denies framing; this says it to browsers older
	// than CSP 2.
	"X-Frame-Options": {"DENY"},
	"Referrer-Policy": {"no-referrer"},
}

// secure adds securityHeaders to every response.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		for name, value := range securityHeaders {
			h[name] = value
		}
		next.ServeHTTP(w, r)
	})
}

// recoverPanics turns a bug in a handler into a plain 500 and a log line
// with the stack, so the user never sees one.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			p := recover()
			if p == nil {
				return
			}
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.ErrorContext(r.Context(), "panic in handler",
				"method", r.Method, "path", r.URL.Path, "panic", p, "stack", string(debug.Stack()))
			http.Error(w, "internal error", http.StatusInternalServerError)
		}()
		next.ServeHTTP(w, r)
	})
}

// itemRows writes the table rows of items, each cell escaped as html/template
// escapes text in an element. Ranging over the items in the template costs a
// reflective call and an escaper call per cell, most of the page's rendering
// (see docs/performance.md); this writes the same bytes in one call.
func itemRows(items []*api.Item) template.HTML {
	var b strings.Builder
	for _, item := range items {
		b.WriteString(`<tr><td class="id">`)
		b.WriteString(strconv.FormatInt(int64(item.GetId()), 10))
		b.WriteString(`</td><td>`)
		b.WriteString(template.HTMLEscapeString(item.GetName()))
		b.WriteString("</td></tr>\n  ")
	}
	return template.HTML(b.String())
}
