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
	s := &Server{cfg: Config{MaxPageItems: 1000}, pages: mustParsePages(nil, false)}
	data, err := s.parsePage(nil)
	if err != nil {
		b.Fatal(err)
	}
	data.Greeting = "Hello " + defaultName + "!"
	for i := int32(1); i <= 10; i++ {
		data.Items = append(data.Items, backend.NewItem(i))
	}
	for i := int32(1); i <= 5; i++ {
		data.Stream = append(data.Stream, backend.NewItem(i))
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		s.render(w, r, http.StatusOK, "index.html", view{Title: "grpcplay", Nav: "page", Data: data})
		if w.Code != http.StatusOK {
			b.Fatalf("status %d", w.Code)
		}
	}
}
