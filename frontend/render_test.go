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
// html/template that it replaces would: the same text once unescaped, and no
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
