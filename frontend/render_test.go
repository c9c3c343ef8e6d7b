package frontend

import (
	"html"
	"html/template"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/grpcplay/grpcplay/api"
)

// itemRows must show every name as text, whatever it holds, as the range in
// html/template that it replaces did: the same text once unescaped, and no
// markup of the name's own.
func TestItemRowsEscapesLikeTheTemplate(t *testing.T) {
	ref := template.Must(template.New("rows").Parse(
		`{{range .}}<tr><td class="id">{{.Id}}</td><td>{{.Name}}</td></tr>` + "\n  " + `{{end}}`))
	pieces := []string{"name 1", "<script>alert(1)</script>", "&amp;", `"'`, "é世😀", "a+b", "\x00", "</td>"}
	r := rand.New(rand.NewPCG(3, 4))
	for range 300 {
		items := make([]*api.Item, r.IntN(6))
		for i := range items {
			var name strings.Builder
			for range r.IntN(4) {
				name.WriteString(pieces[r.IntN(len(pieces))])
			}
			items[i] = &api.Item{Id: r.Int32() - r.Int32(), Name: name.String()}
		}
		var want strings.Builder
		if err := ref.Execute(&want, items); err != nil {
			t.Fatal(err)
		}
		got := string(itemRows(items))
		if html.UnescapeString(got) != html.UnescapeString(want.String()) {
			t.Fatalf("itemRows shows\n%s\nthe template shows\n%s", got, want.String())
		}
		if strings.Count(got, "<") != 6*len(items) {
			t.Fatalf("a name's markup got through: %s", got)
		}
	}
}

// The default page's form, rendered once at start-up, is what the template
// renders for it on each request; any other form is rendered per request.
func TestDefaultFormRenderedOnceIsTheSame(t *testing.T) {
	form := defaultPageForm(1000)
	s := &Server{pages: mustParsePages(form, nil)}
	for _, f := range []pageForm{form, {Name: `<b>"x"</b>`, Items: "3", Stream: "2", MaxItems: 1000}} {
		data := indexData{Form: f, Greeting: "Hello!", Length: 1, Streamed: 1}
		perRequest := s.renderToString(t, data)
		data.FormHTML = s.pages.formHTML(f)
		if f == form && data.FormHTML == "" {
			t.Fatal("the default form is not rendered once")
		}
		if f != form && data.FormHTML != "" {
			t.Fatalf("form %+v has a cached rendering", f)
		}
		if got := s.renderToString(t, data); got != perRequest {
			t.Fatalf("form %+v: cached page\n%s\nper-request page\n%s", f, got, perRequest)
		}
		if !strings.Contains(perRequest, `value="`+template.HTMLEscapeString(f.Name)+`"`) {
			t.Fatalf("form %+v: the name field is not in the page:\n%s", f, perRequest)
		}
	}
}

func (s *Server) renderToString(t *testing.T, data indexData) string {
	t.Helper()
	var b strings.Builder
	v := view{Data: data, Version: s.pages.version, Head: s.pages.heads[fixedHeads[0]]}
	if err := s.pages.byName["index.html"].ExecuteTemplate(&b, "layout", v); err != nil {
		t.Fatal(err)
	}
	return b.String()
}
