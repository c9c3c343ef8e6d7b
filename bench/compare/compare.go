// Package compare is the frontend's /compare page: it runs a short
// gRPC-against-REST bench on demand and shows the latest result. It is
// mounted into the frontend as a frontend.Page, so that the frontend
// itself knows nothing of the bench.
package compare

import (
	"bytes"
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/grpcplay/grpcplay/frontend"
)

// Comparer runs a short, bounded gRPC-against-REST benchmark for the
// /compare page. It is optional: the CLI sets one where the backend and its
// REST face run in-process; without one the page says it is not available.
type Comparer interface {
	// Compare runs the benchmark until it is done or ctx ends, telling
	// progress how far it is.
	Compare(ctx context.Context, progress func(Progress)) (*Comparison, error)
}

// LinkComparer is a Comparer that can also run across an emulated network
// link between its client and its servers; /compare then offers the links.
type LinkComparer interface {
	Comparer
	// Links names the links this machine can emulate or, when it can
	// emulate none, says why.
	Links() (names []string, why string)
	CompareLink(ctx context.Context, link string, progress func(Progress)) (*Comparison, error)
}

// Progress says how far a run is.
type Progress struct {
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
	Took     time.Duration // how long the run took, set by the page
}

// Config is the page's settings.
type Config struct {
	// Comparer runs the bench; without one the page says it is not
	// available.
	Comparer Comparer
	// Interval is the least time between two runs (default 30s).
	Interval time.Duration
	// Estimate is how long a run takes, said on the page until a run has
	// measured it.
	Estimate time.Duration
	// Hosts are the names, besides this machine's own name, IP addresses
	// and localhost, that a request to start a run may be for (its Host
	// header): the names the page is served under, such as a proxy's. See
	// hosts.go.
	Hosts []string
}

// DefaultInterval is Config.Interval's default.
const DefaultInterval = 30 * time.Second

// runTimeout bounds one run, whatever the Comparer does.
const runTimeout = 2 * time.Minute

// Page is the /compare page, for frontend.Config.Pages.
func Page(cfg Config) frontend.Page {
	if cfg.Interval == 0 {
		cfg.Interval = DefaultInterval
	}
	return frontend.Page{Path: "/compare", Label: "gRPC vs REST", Mount: func(mux *http.ServeMux, site *frontend.Site) {
		p := &page{cfg: cfg, site: site, hosts: newServedHosts(cfg.Hosts), crossOrigin: http.NewCrossOriginProtection()}
		mux.HandleFunc("GET /compare", p.show)
		mux.HandleFunc("GET /compare/status", p.status)
		mux.HandleFunc("POST /compare/run", p.run)
		mux.HandleFunc("GET "+scriptPath, serveScript)
	}}
}

// page is the state of /compare in one frontend: one run at a time, and
// the latest result.
type page struct {
	cfg         Config
	site        *frontend.Site
	hosts       servedHosts
	crossOrigin *http.CrossOriginProtection

	mu        sync.Mutex
	running   bool
	progress  Progress
	latest    *Comparison
	lastErr   string
	lastStart time.Time
}

//go:embed templates/compare.html
var pageTemplate string

var tmpl = template.Must(template.New("compare").Parse(pageTemplate))

// The page's script, served under a hash of its content so that browsers
// may cache it for long and still fetch a new build's at once.
var (
	//go:embed static/compare.js
	script     []byte
	scriptPath = "/compare/compare.js"
	scriptURL  = func() string {
		sum := sha256.Sum256(script)
		return scriptPath + "?v=" + hex.EncodeToString(sum[:4])
	}()
)

func serveScript(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/javascript; charset=utf-8")
	h.Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(script)
}

type pageData struct {
	Available bool
	Running   bool
	Progress  Progress
	Latest    *Comparison
	LastError string
	Interval  time.Duration
	Takes     string   // how long a run takes: the last one's time, or the estimate
	Links     []string // links the visitor may pick; none: loopback only
	LinksNote string   // why there are none to pick
}

func (p *page) show(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	data := pageData{
		Available: p.cfg.Comparer != nil,
		Running:   p.running,
		Progress:  p.progress,
		Latest:    p.latest,
		LastError: p.lastErr,
		Interval:  p.cfg.Interval,
		Takes:     "about " + p.cfg.Estimate.Round(time.Second).String(),
	}
	if p.latest != nil {
		data.Takes = "the last run took " + p.latest.Took.Round(100*time.Millisecond).String()
	}
	p.mu.Unlock()
	if lc, ok := p.cfg.Comparer.(LinkComparer); ok {
		data.Links, data.LinksNote = lc.Links()
	}
	var body bytes.Buffer
	if err := tmpl.ExecuteTemplate(&body, "content", data); err != nil {
		p.site.Error(w, r, http.StatusInternalServerError, "The page could not be rendered.")
		return
	}
	p.site.Render(w, r, http.StatusOK, frontend.Content{Title: "gRPC vs REST", Nav: "/compare", Script: scriptURL, Body: template.HTML(body.String())})
}

type runStatus struct {
	Available bool `json:"available"`
	Running   bool `json:"running"`
	Progress
	Error    string `json:"error,omitempty"`
	Finished string `json:"finished,omitempty"`
}

func (p *page) status(w http.ResponseWriter, _ *http.Request) {
	p.mu.Lock()
	st := runStatus{Available: p.cfg.Comparer != nil, Running: p.running, Progress: p.progress, Error: p.lastErr}
	if p.latest != nil {
		st.Finished = p.latest.Finished.UTC().Format(time.RFC3339)
	}
	p.mu.Unlock()
	writeJSON(w, http.StatusOK, st)
}

// refusal is a run the page refuses: the status and message its visitor
// gets.
type refusal struct {
	status     int
	message    string
	retryAfter time.Duration // sent as Retry-After when set
}

var (
	errUnavailable = &refusal{status: http.StatusNotImplemented,
		message: "The comparison is not available here: run grpcplay serve, or grpcplay bench in a terminal."}
	errAlreadyRunning = &refusal{status: http.StatusTooManyRequests, retryAfter: time.Second,
		message: "A bench is already running; its results appear here when it is done."}
)

func badInput(message string) *refusal {
	return &refusal{status: http.StatusBadRequest, message: message}
}

// run starts a run in the background, so that it outlives the request, and
// answers at once: 202 to the page's script, or a redirect back to the page
// for a plain form.
func (p *page) run(w http.ResponseWriter, r *http.Request) {
	if ref := p.start(r); ref != nil {
		if ref.retryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(int(ref.retryAfter.Round(time.Second)/time.Second)))
		}
		if !wantsJSON(r) {
			p.site.Error(w, r, ref.status, ref.message)
			return
		}
		// The visitor's own mistake, or a feature turned off: no operator
		// needs to see it.
		p.site.Logger().DebugContext(r.Context(), "request failed", "method", r.Method, "path", r.URL.Path, "status", ref.status, "error", ref.message)
		writeJSON(w, ref.status, map[string]string{"error": ref.message})
		return
	}
	if wantsJSON(r) {
		writeJSON(w, http.StatusAccepted, map[string]bool{"running": true})
		return
	}
	http.Redirect(w, r, "/compare", http.StatusSeeOther)
}

func (p *page) start(r *http.Request) *refusal {
	if p.cfg.Comparer == nil {
		return errUnavailable
	}
	if ref := p.sameSite(r); ref != nil {
		return ref
	}
	link, ref := p.pickedLink(r)
	if ref != nil {
		return ref
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.running {
		return errAlreadyRunning
	}
	if wait := p.cfg.Interval - time.Since(p.lastStart); !p.lastStart.IsZero() && wait > 0 {
		return &refusal{status: http.StatusTooManyRequests, retryAfter: wait,
			message: fmt.Sprintf("A bench runs at most once every %v; try again in %v.", p.cfg.Interval, wait.Round(time.Second))}
	}
	p.running, p.lastStart, p.progress, p.lastErr = true, time.Now(), Progress{}, ""
	// The run ends with its timeout or when the frontend shuts down, which
	// waits for it.
	p.site.Go(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, runTimeout)
		defer cancel()
		start := time.Now()
		res, err := p.compare(ctx, link)
		p.mu.Lock()
		defer p.mu.Unlock()
		p.running = false
		if err != nil {
			p.site.Logger().Warn("comparison failed", "error", err)
			p.lastErr = "The bench failed: " + err.Error()
			return
		}
		res.Took = time.Since(start)
		res.Header, res.Rows = withoutEmptyColumns(res.Header, res.Rows)
		p.latest = res
	})
	return nil
}

// compare runs the Comparer, turning a panic into an error: the run is in
// a goroutine of its own, where a panic would end the whole process.
func (p *page) compare(ctx context.Context, link string) (res *Comparison, err error) {
	defer func() {
		if v := recover(); v != nil {
			res, err = nil, fmt.Errorf("panic: %v", v)
		}
	}()
	progress := func(pr Progress) {
		p.mu.Lock()
		p.progress = pr
		p.mu.Unlock()
	}
	if link != "" {
		res, err = p.cfg.Comparer.(LinkComparer).CompareLink(ctx, link, progress)
	} else {
		res, err = p.cfg.Comparer.Compare(ctx, progress)
	}
	if err == nil && res == nil {
		err = errors.New("no result")
	}
	return res, err
}

// pickedLink is the link the form asks for ("" for loopback), checked
// against those the Comparer offers.
func (p *page) pickedLink(r *http.Request) (string, *refusal) {
	r.Body = http.MaxBytesReader(nil, r.Body, 1<<10)
	if err := r.ParseForm(); err != nil {
		return "", badInput("the form could not be read: " + err.Error())
	}
	link := r.PostForm.Get("link")
	if link == "" {
		return "", nil
	}
	var names []string
	if lc, ok := p.cfg.Comparer.(LinkComparer); ok {
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

// withoutEmptyColumns drops the columns that no row fills (a figure the
// run could not measure, such as the server's CPU of servers in this
// process), so that the table fits its card.
func withoutEmptyColumns(header []string, rows [][]string) ([]string, [][]string) {
	var keep []int
	for col := range header {
		for _, row := range rows {
			if col < len(row) && row[col] != "" && row[col] != "-" {
				keep = append(keep, col)
				break
			}
		}
	}
	pick := func(cells []string) []string {
		var out []string
		for _, col := range keep {
			if col < len(cells) {
				out = append(out, cells[col])
			}
		}
		return out
	}
	kept := make([][]string, len(rows))
	for i, row := range rows {
		kept[i] = pick(row)
	}
	return pick(header), kept
}
