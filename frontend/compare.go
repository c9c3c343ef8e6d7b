package frontend

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"
)

// Comparer runs a short, bounded gRPC-against-REST benchmark for the
// /compare page. It is optional: the CLI sets one where the backend and its
// REST face run in-process; without one the page says it is not available.
type Comparer interface {
	// Compare runs the benchmark until it is done or ctx ends, telling
	// progress how far it is.
	Compare(ctx context.Context, progress func(CompareProgress)) (*Comparison, error)
}

// LinkComparer is a Comparer that can also run across an emulated network
// link between its client and its servers; /compare then offers the links.
type LinkComparer interface {
	Comparer
	// Links names the links this machine can emulate or, when it can
	// emulate none, says why.
	Links() (names []string, why string)
	CompareLink(ctx context.Context, link string, progress func(CompareProgress)) (*Comparison, error)
}

// CompareProgress says how far a run is.
type CompareProgress struct {
	Done  int    `json:"done"`  // cases finished
	Total int    `json:"total"` // cases in the run
	Case  string `json:"case"`  // the case running now
}

// Comparison is the outcome of a run, ready to show.
type Comparison struct {
	Header []string
	Rows   [][]string
	// Chart is a self-contained <svg> element. The Comparer vouches that it
	// is safe markup; it must use no style element or attribute, which the
	// page's Content-Security-Policy blocks.
	Chart    template.HTML
	Command  string // the command line that measures the same on a terminal
	Notes    []string
	Finished time.Time
}

// compareTimeout bounds one run, whatever the Comparer does.
const compareTimeout = 2 * time.Minute

// comparing is the state of /compare: one run at a time, and the latest
// result.
type comparing struct {
	mu        sync.Mutex
	running   bool
	progress  CompareProgress
	latest    *Comparison
	lastErr   string
	lastStart time.Time
	runs      sync.WaitGroup
}

type compareData struct {
	Available bool
	Running   bool
	Progress  CompareProgress
	Latest    *Comparison
	LastError string
	Interval  time.Duration
	Links     []string // links the visitor may pick; none: loopback only
	LinksNote string   // why there are none to pick
}

func (s *Server) comparePage(w http.ResponseWriter, r *http.Request) {
	c := &s.compare
	c.mu.Lock()
	data := compareData{
		Available: s.cfg.Compare != nil,
		Running:   c.running,
		Progress:  c.progress,
		Latest:    c.latest,
		LastError: c.lastErr,
		Interval:  s.cfg.CompareInterval,
	}
	c.mu.Unlock()
	if lc, ok := s.cfg.Compare.(LinkComparer); ok {
		data.Links, data.LinksNote = lc.Links()
	}
	s.render(w, r, http.StatusOK, "compare.html", data)
}

type compareStatus struct {
	Available bool `json:"available"`
	Running   bool `json:"running"`
	CompareProgress
	Error    string `json:"error,omitempty"`
	Finished string `json:"finished,omitempty"`
}

func (s *Server) compareStatus(w http.ResponseWriter, _ *http.Request) {
	c := &s.compare
	c.mu.Lock()
	st := compareStatus{Available: s.cfg.Compare != nil, Running: c.running, CompareProgress: c.progress, Error: c.lastErr}
	if c.latest != nil {
		st.Finished = c.latest.Finished.UTC().Format(time.RFC3339)
	}
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

// compareRun starts a run in the background, so that it outlives the
// request, and answers at once: 202 to the page's script, or a redirect back
// to the page for a plain form.
func (s *Server) compareRun(w http.ResponseWriter, r *http.Request) {
	if err := s.startCompare(r); err != nil {
		f := failure(err)
		if f.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(f.retryAfter.Round(time.Second)/time.Second)))
		}
		if wantsJSON(r) {
			s.logFailure(r, f.status, err)
			writeJSON(w, f.status, map[string]string{"error": f.messages[0]})
			return
		}
		s.renderError(w, r, err, nil)
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusAccepted, map[string]bool{"running": true})
		return
	}
	http.Redirect(w, r, "/compare", http.StatusSeeOther)
}

func (s *Server) startCompare(r *http.Request) error {
	if s.cfg.Compare == nil {
		return errCompareUnavailable
	}
	if err := s.sameSite(r); err != nil {
		return err
	}
	link, err := s.pickedLink(r)
	if err != nil {
		return err
	}
	c := &s.compare
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.running {
		return tooSoon("A bench is already running; its results appear here when it is done.", time.Second)
	}
	if wait := s.cfg.CompareInterval - time.Since(c.lastStart); !c.lastStart.IsZero() && wait > 0 {
		return tooSoon(fmt.Sprintf("A bench runs at most once every %v; try again in %v.", s.cfg.CompareInterval, wait.Round(time.Second)), wait)
	}
	c.running, c.lastStart, c.progress, c.lastErr = true, time.Now(), CompareProgress{}, ""
	// The run ends with its timeout or when the server shuts down, which
	// waits for it.
	ctx, cancel := context.WithTimeout(s.liveCtx, compareTimeout)
	c.runs.Go(func() {
		defer cancel()
		res, err := s.runComparer(ctx, link)
		c.mu.Lock()
		defer c.mu.Unlock()
		c.running = false
		if err != nil {
			s.log.Warn("comparison failed", "error", err)
			c.lastErr = "The bench failed: " + err.Error()
			return
		}
		c.latest = res
	})
	return nil
}

// runComparer runs the Comparer, turning a panic into an error: the run is
// in a goroutine of its own, where a panic would end the whole process.
func (s *Server) runComparer(ctx context.Context, link string) (res *Comparison, err error) {
	err = recovered(func() error {
		progress := func(p CompareProgress) {
			s.compare.mu.Lock()
			s.compare.progress = p
			s.compare.mu.Unlock()
		}
		var runErr error
		if link != "" {
			res, runErr = s.cfg.Compare.(LinkComparer).CompareLink(ctx, link, progress)
		} else {
			res, runErr = s.cfg.Compare.Compare(ctx, progress)
		}
		return runErr
	})()
	if err == nil && res == nil {
		err = errors.New("no result")
	}
	return res, err
}

// pickedLink is the link the form asks for ("" for loopback), checked
// against those the Comparer offers.
func (s *Server) pickedLink(r *http.Request) (string, error) {
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<10)
	if err := r.ParseForm(); err != nil {
		return "", badInput("the form could not be read: " + err.Error())
	}
	link := r.PostForm.Get("link")
	if link == "" {
		return "", nil
	}
	var names []string
	if lc, ok := s.cfg.Compare.(LinkComparer); ok {
		names, _ = lc.Links()
	}
	if !slices.Contains(names, link) {
		return "", badInput(fmt.Sprintf("link %q is not one this server can emulate.", link))
	}
	return link, nil
}

func wantsJSON(r *http.Request) bool {
	return r.Header.Get("Accept") == "application/json"
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
