package frontend

import (
	"context"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
)

// Page is a page the frontend serves for another package, such as the
// gRPC-against-REST bench of bench/compare: it is linked from the
// navigation of every page, and its routes run behind the frontend's
// middleware.
type Page struct {
	Path  string // the address the navigation links to, such as "/compare"
	Label string // the navigation link's text
	// Mount registers the page's routes on mux. Their handlers write whole
	// pages through site, so that they share the layout.
	Mount func(mux *http.ServeMux, site *Site)
}

// Site is what a Page's handlers share of the frontend.
type Site struct{ s *Server }

// Content is one HTML page of a Page's.
type Content struct {
	Title  string        // the page's title; the site's name is added
	Nav    string        // the Path of the Page it belongs to, marked in the navigation
	Script string        // the address of a script the page runs, or ""
	Body   template.HTML // what the layout shows between the navigation and the footer
}

// Render writes c, in the layout, with status code.
func (site *Site) Render(w http.ResponseWriter, r *http.Request, code int, c Content) {
	site.s.render(w, r, code, "content.html", view{Title: c.Title + " · grpcplay", Nav: c.Nav, Script: c.Script, Data: c})
}

// Error writes the error page with code and message, and logs the failure
// as the frontend logs its own: at debug when the client caused it.
func (site *Site) Error(w http.ResponseWriter, r *http.Request, code int, message string) {
	site.s.renderError(w, r, &pageError{status: code, messages: []string{message}, cause: errors.New(message)}, nil)
}

// Go runs f on a goroutine of its own, with a context that ends when the
// frontend starts to shut down; Shutdown waits for f to return.
func (site *Site) Go(f func(ctx context.Context)) {
	site.s.background.Go(func() { f(site.s.liveCtx) })
}

// Logger is where the frontend logs.
func (site *Site) Logger() *slog.Logger { return site.s.log }
