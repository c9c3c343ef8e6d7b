package frontend

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/clientlimit"
	"github.com/grpcplay/grpcplay/internal/telemetry"
)

func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", s.index)
	mux.HandleFunc("GET /live", s.live)
	mux.HandleFunc("GET /live/events", s.liveEvents)
	mux.HandleFunc("GET /healthz", s.healthz)
	mux.HandleFunc("GET /readyz", s.readyz)
	mux.Handle("GET /static/", staticHandler())
	if s.cfg.Metrics != nil {
		mux.Handle("GET /metrics", telemetry.MetricsHandler(s.cfg.Metrics, s.log))
	}
	if s.cfg.DebugPage {
		mux.HandleFunc("GET "+debugPath, s.debug)
	}
	for _, p := range s.cfg.Pages {
		p.Mount(mux, &Site{s})
	}
	mux.HandleFunc(notFoundPattern, s.notFound)
	return s.observe(s.recoverPanics(secure(mux)))
}

// pageForm is the page's form as the user filled it in, shown back as it
// was, so that a typo can be corrected.
type pageForm struct {
	Name, Items, Stream string
	MaxItems            int32
}

// indexData is what the page shows. A call's note, when set, takes the
// place of its part of the page: the backend does not offer the call.
type indexData struct {
	Form                                pageForm
	Length, Streamed                    int32 // the lengths asked of getAll and getStream
	Greeting                            string
	Items, Stream                       []*api.Item
	GreetingNote, ItemsNote, StreamNote string
}

// parsePage reads the page's query. A parameter that is absent takes the
// post's value; one that is present must be valid, so that a typo is shown
// to the user and not silently replaced.
func (s *Server) parsePage(q url.Values) (indexData, error) {
	param := func(name, post string) string {
		if q.Has(name) {
			return q.Get(name)
		}
		return post
	}
	d := indexData{Form: pageForm{Name: param("name", defaultName), Items: param("items", defaultItems), Stream: param("stream", defaultStream), MaxItems: s.cfg.MaxPageItems}}
	var itemsProblem, streamProblem string
	d.Length, itemsProblem = parseLength("items", d.Form.Items, s.cfg.MaxPageItems)
	d.Streamed, streamProblem = parseLength("stream", d.Form.Stream, s.cfg.MaxPageItems)
	problems := slices.DeleteFunc([]string{checkName(d.Form.Name), itemsProblem, streamProblem}, func(p string) bool { return p == "" })
	if len(problems) > 0 {
		return d, badInput(problems...)
	}
	return d, nil
}

// checkName catches what the backend cannot be asked at all: gRPC refuses to
// send a string that is not UTF-8. The length limit is the backend's, whose
// InvalidArgument comes back as a 400 with its message.
func checkName(name string) string {
	switch {
	case name == "":
		return "name is empty: enter a name to greet."
	case !utf8.ValidString(name):
		return "name is not valid UTF-8 text."
	}
	return ""
}

// parseLength reads a length parameter and returns it, or a problem to show.
func parseLength(field, raw string, limit int32) (int32, string) {
	n, err := strconv.ParseInt(strings.TrimSpace(raw), 10, 32)
	switch {
	case errors.Is(err, strconv.ErrRange) && strings.HasPrefix(strings.TrimSpace(raw), "-"):
		return 0, fmt.Sprintf("%s must be 0 or more, got %s.", field, raw)
	case errors.Is(err, strconv.ErrRange):
		return 0, fmt.Sprintf("%s must be at most %d, got %s.", field, limit, raw)
	case err != nil:
		return 0, fmt.Sprintf("%s must be a whole number from 0 to %d, got %q.", field, limit, raw)
	case n < 0:
		return 0, fmt.Sprintf("%s must be 0 or more, got %d.", field, n)
	case n > int64(limit):
		return 0, fmt.Sprintf("%s must be at most %d, got %d.", field, limit, n)
	}
	return int32(n), ""
}

// index is the post's page: a greeting, getAll and getStream, under one
// deadline, so the page answers within it even when the backend is down or
// slow.
func (s *Server) index(w http.ResponseWriter, r *http.Request) {
	data, err := s.parsePage(r.URL.Query())
	if err == nil {
		ctx, cancel := context.WithTimeout(r.Context(), s.cfg.Timeout)
		defer cancel()
		err = s.loadIndex(ctx, &data)
	}
	if err != nil {
		s.renderError(w, r, err, &data.Form)
		return
	}
	s.render(w, r, http.StatusOK, "index.html", view{Title: "grpcplay", Nav: "page", Data: data})
}

// loadIndex makes the page's three calls at once, the unary two on
// goroutines of their own, so that the page waits about one round trip
// instead of three. All three run to their end and the page shows the first
// error in the page's order, so that what a user sees does not depend on
// which reply arrived first.
func (s *Server) loadIndex(ctx context.Context, data *indexData) error {
	var helloErr, allErr, streamErr error
	var wg sync.WaitGroup
	wg.Go(func() {
		helloErr = recovered(func() (err error) {
			data.Greeting, err = s.backend.SayHello(ctx, data.Form.Name)
			return err
		})
	})
	wg.Go(func() {
		allErr = recovered(func() (err error) {
			data.Items, err = s.backend.GetAll(ctx, data.Length)
			return err
		})
	})
	streamErr = recovered(func() error {
		for item, err := range s.backend.GetStream(ctx, data.Streamed) {
			if err != nil {
				return err
			}
			data.Stream = append(data.Stream, item)
		}
		return nil
	})
	wg.Wait()
	data.GreetingNote, helloErr = unoffered("sayHello", helloErr)
	data.ItemsNote, allErr = unoffered("getAll", allErr)
	data.StreamNote, streamErr = unoffered("getStream", streamErr)
	return cmp.Or(helloErr, allErr, streamErr)
}

// recovered runs f and turns its panic, a bug in a backend client, into a
// *panicError: the page's own error page, not a crash of the process.
func recovered(f func() error) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = &panicError{value: p, stack: debug.Stack()}
		}
	}()
	return f()
}

// unoffered turns a call the backend does not implement (an older backend,
// or the post's Python server lacking a newer RPC) into a note for its part
// of the page, so that the rest of the page still shows.
func unoffered(method string, err error) (string, error) {
	if status.Code(err) == codes.Unimplemented {
		return "This backend does not offer " + method + ".", nil
	}
	return "", err
}

// view is what the layout shows: the page's title, the navigation link
// marked as the current page's, a script of its own, and its data.
type view struct {
	Title, Nav, Script string
	Data               any
}

// render writes a whole page or, when the template fails, a plain 500: the
// page is built in memory first, so the user never gets half of one.
func (s *Server) render(w http.ResponseWriter, r *http.Request, code int, name string, v view) {
	var page bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&page, "layout", v); err != nil {
		s.logFailure(r, http.StatusInternalServerError, fmt.Errorf("render %s: %w", name, err))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	// Every page shows the backend's answer of now; a cached copy would hide
	// that the backend is down or back.
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Length", strconv.Itoa(page.Len()))
	w.WriteHeader(code)
	_, _ = w.Write(page.Bytes())
}

func (s *Server) parseLive(q url.Values) (liveForm, int32, error) {
	form := liveForm{Length: strconv.Itoa(defaultLiveLength), MaxItems: s.cfg.MaxLiveItems}
	if !q.Has("length") {
		return form, defaultLiveLength, nil
	}
	form.Length = q.Get("length")
	n, p := parseLength("length", form.Length, s.cfg.MaxLiveItems)
	if p != "" {
		return form, 0, badInput(p)
	}
	return form, n, nil
}

// live is the page of the live view; its script reads liveEvents.
func (s *Server) live(w http.ResponseWriter, r *http.Request) {
	form, n, err := s.parseLive(r.URL.Query())
	if err != nil {
		s.renderError(w, r, err, &form)
		return
	}
	s.render(w, r, http.StatusOK, "live.html", view{Title: "Live stream · grpcplay", Nav: "live", Data: liveData{Form: form, Length: n}})
}

// liveEvents streams getStream to the browser as Server-Sent Events, one
// event per item as it arrives. The stream ends with a "done" event, or an
// "error" event, so that the page can close its EventSource instead of
// letting it reconnect and start over.
func (s *Server) liveEvents(w http.ResponseWriter, r *http.Request) {
	_, n, err := s.parseLive(r.URL.Query())
	if err != nil {
		s.plainError(w, r, err)
		return
	}
	if r.Method == http.MethodHead {
		w.Header().Set("Content-Type", "text/event-stream")
		return
	}
	slot, ok := s.liveSlots.Acquire(r)
	if !ok {
		s.plainError(w, r, errTooManyLiveStreams)
		return
	}
	defer slot.Release()
	// The browser going away, the deadline, the server shutting down or
	// the slot going to a client holding fewer cancels the backend stream;
	// an eviction also cuts a write blocked on the browser.
	ctx, cancel := context.WithTimeout(slot.Context(), s.cfg.LiveTimeout)
	defer cancel()
	defer context.AfterFunc(s.liveCtx, cancel)()
	defer slot.Stop(w)()

	events := startEvents(slot, w, s.liveSlots.Meter(s.cfg.SlowReader))
	// A comment, which EventSource ignores, sends the headers at once so
	// that the page shows the stream as open before the first item.
	if err := events.write(": " + strconv.Itoa(int(n)) + " items\n\n"); err != nil {
		return
	}
	var sent int
	for item, err := range s.backend.GetStream(ctx, n) {
		if err != nil {
			s.streamFailed(r, events.send, err)
			return
		}
		if err := events.send("", itemJSON(item)); err != nil {
			// The browser is gone: leaving the loop cancels the stream.
			return
		}
		sent++
	}
	_ = events.send("done", strconv.Itoa(sent))
}

// eventWriter writes server-sent events, each flushed as it is written.
type eventWriter struct {
	slot   *clientlimit.Slot // evicted, it takes no more events
	w      http.ResponseWriter
	rc     *http.ResponseController
	reader *clientlimit.Meter
}

// startEvents sends the headers of an event stream.
func startEvents(slot *clientlimit.Slot, w http.ResponseWriter, reader *clientlimit.Meter) *eventWriter {
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	// Proxies such as nginx would otherwise hold the events back.
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	return &eventWriter{slot: slot, w: w, rc: http.NewResponseController(w), reader: reader}
}

// write sends text at once. The server's WriteTimeout counts from the start
// of the request, so each event pushes it out: a stream may run long, but a
// browser that stops reading, or reads slower than SlowReader, is still
// dropped.
func (e *eventWriter) write(text string) error {
	start := time.Now()
	if err := e.rc.SetWriteDeadline(e.reader.Deadline(start)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	// Checked after the deadline is set, so that an eviction's deadline in
	// the past (Slot.Stop) is never moved back.
	if e.slot.Evicted() {
		return clientlimit.ErrEvicted
	}
	if _, err := io.WriteString(e.w, text); err != nil {
		return err
	}
	if err := e.rc.Flush(); err != nil {
		return err
	}
	return e.reader.Wrote(len(text), time.Since(start))
}

func (e *eventWriter) send(event, data string) error { return e.write(formatEvent(event, data)) }

func (s *Server) streamFailed(r *http.Request, send func(event, data string) error, err error) {
	f := failure(err)
	s.logFailure(r, f.status, err)
	msg := strings.Join(f.messages, " ")
	if s.liveCtx.Err() != nil {
		msg = "The frontend is shutting down. Reload the page to start again."
	}
	_ = send("error", msg)
}

func formatEvent(event, data string) string {
	var b strings.Builder
	if event != "" {
		b.WriteString("event: " + event + "\n")
	}
	for line := range strings.SplitSeq(data, "\n") {
		b.WriteString("data: " + line + "\n")
	}
	b.WriteString("\n")
	return b.String()
}

func itemJSON(item *api.Item) string {
	data, _ := json.Marshal(struct {
		ID   int32  `json:"id"`
		Name string `json:"name"`
	}{item.GetId(), item.GetName()})
	return string(data)
}

// healthz answers while the process runs: a liveness probe must not fail
// because the backend does, or every frontend restarts together.
func (s *Server) healthz(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok\n")
}

// readyz answers 200 only while the backend does, so that a load balancer
// sends users to frontends that can serve them.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), readyTimeout)
	defer cancel()
	w.Header().Set("Cache-Control", "no-store")
	if err := s.backend.Ready(ctx); err != nil {
		s.logFailure(r, http.StatusServiceUnavailable, err)
		http.Error(w, "not ready: the backend is unreachable", http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	_, _ = io.WriteString(w, "ready\n")
}

func (s *Server) notFound(w http.ResponseWriter, r *http.Request) {
	s.renderError(w, r, errNotFound, nil)
}
