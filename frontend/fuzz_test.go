package frontend

import (
	"context"
	"iter"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"

	"google.golang.org/grpc"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
)

// FuzzRequest sends the frontend's handler any path and query. The answer is
// never a 5xx and the handler never panics; a 400 says what is wrong; a
// query that parsePage or parseLive accepts is served. The backend is the
// real service, in memory, so that the fuzzer spends its time in the
// frontend. Its seeds are in testdata/fuzz/FuzzRequest.
func FuzzRequest(f *testing.F) {
	cfg := Config{MaxPageItems: 1000, MaxLiveItems: 1000}
	s := New(cfg, &inMemoryBackend{svc: backend.NewService(backend.DefaultLimits)})
	handler := s.Handler()
	f.Fuzz(func(t *testing.T, path, rawQuery string) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.Path = "/" + strings.TrimPrefix(path, "/")
		req.URL.RawQuery = rawQuery
		rec := httptest.NewRecorder()
		handler.ServeHTTP(rec, req)
		code, body := rec.Code, rec.Body.String()
		if code >= 500 {
			t.Fatalf("GET %q ? %q: status %d\n%s", req.URL.Path, rawQuery, code, body)
		}
		if code == http.StatusBadRequest && !hasMessage(rec.Header().Get("Content-Type"), body) {
			t.Fatalf("GET %q ? %q: 400 without a message\n%s", req.URL.Path, rawQuery, body)
		}
		if strings.Contains(body, "goroutine ") {
			t.Fatalf("GET %q ? %q: the body carries a stack trace", req.URL.Path, rawQuery)
		}
		q := req.URL.Query()
		switch req.URL.Path {
		case "/":
			d, err := s.parsePage(q)
			tooLong := len(d.Form.Name) > backend.DefaultLimits.MaxNameBytes
			if err == nil && !tooLong && code != http.StatusOK {
				t.Fatalf("GET / ? %q: parsePage accepted it, but the status is %d\n%s", rawQuery, code, body)
			}
			if (err != nil || tooLong) && code != http.StatusBadRequest {
				t.Fatalf("GET / ? %q: refused (%v), but the status is %d", rawQuery, err, code)
			}
		case "/live", "/live/events":
			_, _, err := s.parseLive(q)
			if want := HTTPStatus(err); code != want {
				t.Fatalf("GET %s ? %q: status %d, want %d (%v)", req.URL.Path, rawQuery, code, want, err)
			}
		}
	})
}

// errorMessageRE finds the first message of an error page.
var errorMessageRE = regexp.MustCompile(`<ul id="error-messages">\s*<li>[^<\s][^<]*</li>`)

// hasMessage reports whether a 400 says what is wrong: a message in the
// error page's list, or a plain-text line for programs.
func hasMessage(contentType, body string) bool {
	if strings.HasPrefix(contentType, "text/html") {
		return errorMessageRE.MatchString(body)
	}
	return strings.TrimSpace(body) != ""
}

// inMemoryBackend calls the backend's service directly, with its limits and
// messages, and no network.
type inMemoryBackend struct {
	svc *backend.Service
}

func (b *inMemoryBackend) SayHello(ctx context.Context, name string) (string, error) {
	reply, err := b.svc.SayHello(ctx, &api.HelloRequest{Name: name})
	return reply.GetMessage(), err
}

func (b *inMemoryBackend) GetAll(ctx context.Context, n int32) ([]*api.Item, error) {
	reply, err := b.svc.GetAll(ctx, &api.ApiRequest{Length: n})
	return reply.GetItems(), err
}

func (b *inMemoryBackend) GetStream(ctx context.Context, n int32) iter.Seq2[*api.Item, error] {
	return func(yield func(*api.Item, error) bool) {
		stream := &sliceStream{ctx: ctx}
		if err := b.svc.GetStream(&api.ApiRequest{Length: n}, stream); err != nil {
			yield(nil, err)
			return
		}
		for _, item := range stream.items {
			if !yield(item, nil) {
				return
			}
		}
	}
}

func (b *inMemoryBackend) Ready(context.Context) error { return nil }

// sliceStream is the server side of a stream, in memory.
type sliceStream struct {
	grpc.ServerStreamingServer[api.Item]
	ctx   context.Context
	items []*api.Item
}

func (s *sliceStream) Context() context.Context { return s.ctx }

func (s *sliceStream) Send(item *api.Item) error {
	s.items = append(s.items, item)
	return nil
}
