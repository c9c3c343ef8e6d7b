package frontend

import (
	"bytes"
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
	"sync"

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

// pages holds each page's template, parsed once. Every page shares the
// layout and the forms, so each is its own template set.
type pages struct {
	byName map[string]*template.Template
	// heads holds the layout's head and navigation of each page whose
	// title is fixed, rendered once: rendering them made a dozen
	// reflective template calls (static, eq and their escapers) per page.
	heads   map[head]template.HTML
	links   []navLink // the Pages' links, after the frontend's own
	version string
	// defaultForm is the page-form template of the page without a query,
	// the post's page and nearly every request, rendered once.
	defaultForm     pageForm
	defaultFormHTML template.HTML
}

// head is what the layout's head and navigation show.
type head struct {
	Nav    string
	Title  string
	Script string // a Page's script, or ""
}

// navLink is a Page's link in the navigation.
type navLink struct{ Path, Label string }

// fixedHeads are the heads of the pages with a fixed title.
var fixedHeads = []head{
	{Nav: "page", Title: "grpcplay"},
	{Nav: "live", Title: "Live stream · grpcplay"},
	{Nav: "debug", Title: "Debug · grpcplay"},
}

var pageNames = []string{"index.html", "live.html", "content.html", "error.html", "debug.html"}

func mustParsePages(defaultForm pageForm, extra []Page) *pages {
	buildVersion := version.String()
	funcs := template.FuncMap{
		"static": func(name string) (string, error) {
			v, ok := staticVersions[name]
			if !ok {
				return "", fmt.Errorf("no static file %q", name)
			}
			return "/static/" + name + "?v=" + v, nil
		},
		// The build does not change while it runs; reading the build info
		// on every page was 7% of rendering.
		"version":  func() string { return buildVersion },
		"itemRows": itemRows,
	}
	p := &pages{byName: map[string]*template.Template{}, heads: map[head]template.HTML{}, version: buildVersion}
	for _, e := range extra {
		p.links = append(p.links, navLink{e.Path, e.Label})
	}
	for _, name := range pageNames {
		t := template.Must(template.New(name).Funcs(funcs).ParseFS(templateFiles,
			"templates/layout.html", "templates/forms.html", "templates/"+name))
		p.byName[name] = t
	}
	for _, h := range fixedHeads {
		html, err := p.renderHead(h)
		if err != nil {
			panic(err)
		}
		p.heads[h] = html
	}
	var b strings.Builder
	if err := p.byName["index.html"].ExecuteTemplate(&b, "page-form", defaultForm); err != nil {
		panic(err)
	}
	p.defaultForm, p.defaultFormHTML = defaultForm, template.HTML(b.String())
	return p
}

// formHTML is form rendered, if it is the default one.
func (p *pages) formHTML(form pageForm) template.HTML {
	if form == p.defaultForm {
		return p.defaultFormHTML
	}
	return ""
}

// head returns h rendered, from the cache when its title is a fixed one.
func (p *pages) head(h head) (template.HTML, error) {
	if html, ok := p.heads[h]; ok {
		return html, nil
	}
	return p.renderHead(h)
}

// renderHead runs the layout's "head" template, escaped by html/template
// like the rest of the page; the layout then writes it as it is.
func (p *pages) renderHead(h head) (template.HTML, error) {
	var b strings.Builder
	data := struct {
		head
		Links []navLink
	}{h, p.links}
	if err := p.byName["index.html"].ExecuteTemplate(&b, "head", data); err != nil {
		return "", err
	}
	return template.HTML(b.String()), nil
}

// view is what the layout gets: the page's own data, and its head, whose
// navigation marks which page it is.
type view struct {
	Head    template.HTML
	Version string
	Data    any
}

type pageForm struct {
	Name     string
	Items    string
	Stream   string
	MaxItems int32
}

type liveForm struct {
	Length   string
	MaxItems int32
}

type indexData struct {
	Form pageForm
	// FormHTML is Form rendered, when it is the default page's form, which
	// is rendered once (pages.defaultForm); empty, the page renders Form.
	FormHTML template.HTML
	Greeting string
	Items    []*api.Item
	Stream   []*api.Item
	Length   int32
	Streamed int32
	// ItemCount and StreamCount are len(Items) and len(Stream): a field
	// read costs the template less than a call of len.
	ItemCount, StreamCount int
	// GreetingNote, ItemsNote and StreamNote, when set, take the place of
	// their call's part of the page: the backend does not offer the call.
	GreetingNote, ItemsNote, StreamNote string
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

// render writes a whole page or, when the template fails, a plain 500: the
// page is built in memory first, so the user never gets half of one.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, data any) {
	v := view{Data: data, Version: s.pages.version}
	var err error
	v.Head, err = s.pages.head(headOf(data))
	buf := getBuffer()
	defer putBuffer(buf)
	if err == nil {
		err = s.pages.byName[name].ExecuteTemplate(buf, "layout", v)
	}
	if err != nil {
		s.logFailure(r, http.StatusInternalServerError, fmt.Errorf("render %s: %w", name, err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h["Content-Type"] = htmlContentType
	// Every page shows the backend's answer of now; a cached copy would hide
	// that the backend is down or back.
	h["Cache-Control"] = noStore
	// The page is whole before it is sent, so its length is known: the
	// browser gets it, and the body is sent without chunked framing.
	h["Content-Length"] = []string{strconv.Itoa(buf.Len())}
	w.WriteHeader(code)
	_, _ = w.Write(buf.Bytes())
}

// headOf is the head of the page that shows data.
func headOf(data any) head {
	switch d := data.(type) {
	case indexData:
		return fixedHeads[0]
	case liveData:
		return fixedHeads[1]
	case debugData:
		return fixedHeads[2]
	case Content:
		return head{Nav: d.Nav, Title: d.Title + " · grpcplay", Script: d.Script}
	case errorData:
		h := head{Title: d.Title + " · grpcplay"}
		if d.LiveForm != nil {
			h.Nav = "live"
		} else if d.PageForm != nil {
			h.Nav = "page"
		}
		return h
	}
	return head{Title: "grpcplay"}
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

// Header values that never change are set as shared slices under their
// canonical names: Header.Set would canonicalize the name and allocate the
// value's slice on every response. net/http only reads them, and Set, Add
// and Del on a header replace its slice rather than write into it.
var (
	htmlContentType = []string{"text/html; charset=utf-8"}
	noStore         = []string{"no-store"}
)

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

// Pages are rendered into buffers that are used again, since every page is
// built whole before it is sent. A buffer grown by a very long page is let
// go rather than kept.
var pageBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

const maxPooledPageBytes = 1 << 20

func getBuffer() *bytes.Buffer { return pageBuffers.Get().(*bytes.Buffer) }

func putBuffer(b *bytes.Buffer) {
	if b.Cap() > maxPooledPageBytes {
		return
	}
	b.Reset()
	pageBuffers.Put(b)
}

// itemRows writes the table rows of items, each cell escaped as html/template
// escapes text in an element. Ranging over the items in the template costs a
// reflective call and an escaper call per cell, which was most of the page's
// rendering time; this writes the same bytes in one call.
func itemRows(items []*api.Item) template.HTML {
	var b strings.Builder
	b.Grow(len(items) * 56)
	for _, item := range items {
		b.WriteString(`<tr><td class="id">`)
		b.WriteString(strconv.FormatInt(int64(item.GetId()), 10))
		b.WriteString(`</td><td>`)
		b.WriteString(template.HTMLEscapeString(item.GetName()))
		b.WriteString("</td></tr>\n  ")
	}
	return template.HTML(b.String())
}
