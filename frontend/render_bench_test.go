package frontend

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/grpcplay/grpcplay/backend"
)

// BenchmarkRenderIndex renders the default page (a greeting, 10 items and 5
// streamed items) without any network, to show what the template costs.
func BenchmarkRenderIndex(b *testing.B) {
	form := defaultPageForm(1000)
	s := &Server{pages: mustParsePages(form, nil)}
	data := indexData{Form: form, FormHTML: s.pages.formHTML(form),
		Greeting: "Hello " + defaultName + "!", Length: 10, Streamed: 5}
	for i := int32(1); i <= 10; i++ {
		data.Items = append(data.Items, backend.NewItem(i))
	}
	for i := int32(1); i <= 5; i++ {
		data.Stream = append(data.Stream, backend.NewItem(i))
	}
	data.ItemCount, data.StreamCount = len(data.Items), len(data.Stream)
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.render(w, r, http.StatusOK, "index.html", data)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
