// Package bench measures the post's thesis, that gRPC beats REST between
// services: it runs the same calls over gRPC and over the REST face, with
// transport (HTTP/1.1 keep-alive, a new connection per call, HTTP/2) and
// encoding (JSON, protobuf) varied apart, against a running backend or
// servers it starts itself, in-process or in their own pinned process
// across an emulated link (see Links), and reports throughput, latency,
// bytes and CPU per call as a table, JSON or an SVG chart.
package bench

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/grpcplay/grpcplay/api"
)

// Transports, the first half of a case's name.
const (
	TransportGRPC      = "grpc"       // gRPC over one HTTP/2 connection
	TransportREST      = "rest"       // REST/JSON over HTTP/1.1 keep-alive connections
	TransportRESTClose = "rest-close" // REST/JSON with a new connection per call
	// The other halves of the 2x2 of transport and encoding: REST/JSON over
	// one h2c (HTTP/2 without TLS) connection, and the REST face's protobuf
	// bodies over HTTP/1.1 keep-alive and over h2c.
	TransportRESTH2      = "rest-h2"
	TransportRESTProto   = "rest-proto"
	TransportRESTH2Proto = "rest-h2-proto"
	// TransportRESTCloseTLS is the post's "open and close" as it runs in
	// production: HTTPS, a new TLS 1.3 connection per call.
	TransportRESTCloseTLS = "rest-close-tls"
	// TransportRESTPlain is REST/JSON as a Go team writes it without
	// grpc-gateway, net/http and encoding/json over HTTP/1.1 keep-alive, on
	// the same Service (see plainREST): the bench's own, not a product face.
	TransportRESTPlain = "rest-plain"
)

// Methods, the second half of a case's name.
const (
	MethodHello  = "hello"  // sayHello, GET /v1/hello
	MethodItems  = "items"  // getAll, GET /v1/items
	MethodStream = "stream" // getStream, GET /v1/stream (NDJSON)
)

// Transports and Methods list every transport and method, in report order.
var (
	Transports = []string{TransportGRPC, TransportREST, TransportRESTPlain, TransportRESTClose, TransportRESTH2, TransportRESTProto, TransportRESTH2Proto, TransportRESTCloseTLS}
	Methods    = []string{MethodHello, MethodItems, MethodStream}
)

// Defaults of Config: a quick run of short cases, about three minutes on
// two cores. Full selects the whole matrix, FullLengths and every
// transport, at FullDuration a case.
var (
	DefaultLengths     = []int32{10, 1000}
	FullLengths        = []int32{1, 10, 1000, 100_000}
	DefaultConcurrency = []int{1, 50}
)

const (
	DefaultDuration = 2 * time.Second
	DefaultWarmup   = 500 * time.Millisecond
	FullDuration    = 3 * time.Second
	FullWarmup      = 1 * time.Second
	// Committed runs, the figures the docs quote, measure each case at
	// least CommittedDuration, CommittedRepeat times, on a machine whose
	// load average is at most MaxCommittedLoad when they start.
	CommittedDuration = 5 * time.Second
	CommittedWarmup   = 1 * time.Second
	CommittedRepeat   = 3
	MaxCommittedLoad  = 1.0
	// MaxRepeat bounds the repetitions of a case.
	MaxRepeat = 100
	// MaxDuration bounds one case, so that a typo cannot start a day-long run.
	MaxDuration = 10 * time.Minute
	// MaxConcurrency bounds the workers of one case.
	MaxConcurrency = 1000
)

// Config says what to run. Zero fields but Warmup take their defaults.
type Config struct {
	Duration    time.Duration // measured time of each case
	Warmup      time.Duration // load before the measured time of each case, not counted; 0: none
	Lengths     []int32       // lengths of getAll and getStream; sayHello has none
	Concurrency []int         // calls in flight at once
	// Cases selects cases by transport ("grpc"), method ("items") or both
	// ("rest/items"); a case runs when any entry matches it. Empty: all
	// but rest-close-tls, or all with Full.
	Cases []string
	// Full is the whole matrix: FullLengths and every transport, where
	// Lengths and Cases are not set.
	Full bool
	// Repeat measures each case this many times (0: once), interleaved:
	// every transport of a method, length and concurrency runs before any
	// runs again, in the reverse order each time, so that a machine's
	// slow minute, or a server's history, is spread over all of them. The
	// report gives each case's median and spread.
	Repeat int
	// Committed is a run whose figures the docs may quote: each case at
	// least CommittedDuration after a warm-up, CommittedRepeat times, the
	// servers in their own process; Run refuses to start when the load
	// average is above MaxCommittedLoad.
	Committed bool
	// Target is the gRPC target of a running backend and RESTTarget the base
	// URL of its REST face. Both empty: Run starts both in-process.
	Target     string
	RESTTarget string
	// RESTH2Target, with a Target, is the base URL of a REST face that
	// speaks h2c, for the rest-h2 cases; empty: they are skipped.
	RESTH2Target string
	// ServerPID, with a Target, is the server's process; its CPU time is
	// read from /proc (Linux).
	ServerPID int
	// Link, when set, runs the cases across an emulated link (see Links),
	// with the servers in a process of their own: "loopback" or empty is
	// today's loopback.
	Link string
	// Apart runs the servers in a process of their own, pinned to another
	// core than the client's, even on loopback; a Link other than loopback
	// implies it.
	Apart bool
	// Service, for a run in-process, is the implementation every face
	// calls (nil: backend.NewService with the default limits).
	Service api.ApiServer
	// Progress, if set, is told how each case goes, several times a second.
	Progress func(Progress)
}

// Case is one measured combination.
type Case struct {
	Transport   string `json:"transport"`
	Method      string `json:"method"`
	Length      int32  `json:"length"` // 0 for hello
	Concurrency int    `json:"concurrency"`
}

func (c Case) String() string {
	s := c.Transport + "/" + c.Method
	if c.Method != MethodHello {
		s += fmt.Sprintf(" len=%d", c.Length)
	}
	return s + fmt.Sprintf(" c=%d", c.Concurrency)
}

// Progress is the state of the running case.
type Progress struct {
	Index    int // 1-based number of the case
	Total    int
	Case     Case
	Phase    string // PhaseWarmup, PhaseMeasure or PhaseDone
	Elapsed  time.Duration
	Duration time.Duration
	Calls    int64 // completed in the measured time so far
	Errors   int64
	Result   *Result // when Phase is PhaseDone
	// Left estimates the time the rest of the run takes, from the cases
	// done so far.
	Left time.Duration
}

const (
	PhaseWarmup  = "warm-up"
	PhaseMeasure = "measure"
	PhaseDone    = "done"
)

func (c Config) withDefaults() Config {
	switch {
	case c.Duration != 0:
	case c.Committed:
		c.Duration = CommittedDuration
	case c.Full:
		c.Duration = FullDuration
	default:
		c.Duration = DefaultDuration
	}
	if c.Repeat == 0 {
		c.Repeat = 1
		if c.Committed {
			c.Repeat = CommittedRepeat
		}
	}
	if c.Committed {
		c.Apart = true
	}
	if c.Committed && c.Warmup == 0 {
		c.Warmup = CommittedWarmup
	}
	if len(c.Lengths) == 0 {
		c.Lengths = DefaultLengths
		if c.Full {
			c.Lengths = FullLengths
		}
	}
	if len(c.Concurrency) == 0 {
		c.Concurrency = DefaultConcurrency
	}
	return c
}

// Validate says what is wrong with a configuration, as one error per problem.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Duration < 0 || c.Duration > MaxDuration {
		errs = append(errs, fmt.Errorf("duration %v must be more than 0 and at most %v", c.Duration, MaxDuration))
	}
	if c.Warmup < 0 || c.Warmup > MaxDuration {
		errs = append(errs, fmt.Errorf("warm-up %v must be 0 or more and at most %v", c.Warmup, MaxDuration))
	}
	errs = append(errs, c.repeatErrors()...)
	for _, n := range c.Lengths {
		if n < 1 {
			errs = append(errs, fmt.Errorf("length %d must be at least 1", n))
		}
	}
	for _, n := range c.Concurrency {
		if n < 1 || n > MaxConcurrency {
			errs = append(errs, fmt.Errorf("concurrency %d must be between 1 and %d", n, MaxConcurrency))
		}
	}
	for _, f := range c.Cases {
		if !validFilter(f) {
			errs = append(errs, fmt.Errorf("case %q matches nothing: use a transport (%s), a method (%s) or TRANSPORT/METHOD",
				f, strings.Join(Transports, ", "), strings.Join(Methods, ", ")))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	cases := c.cases()
	if len(cases) == 0 {
		return errors.New("no case selected")
	}
	if c.Target != "" || c.RESTTarget != "" {
		needGRPC := slices.ContainsFunc(cases, func(k Case) bool { return k.Transport == TransportGRPC })
		needREST := slices.ContainsFunc(cases, func(k Case) bool { return k.Transport != TransportGRPC })
		if needGRPC && c.Target == "" {
			errs = append(errs, errors.New("the gRPC cases need --target when --rest-target is set (or select only REST cases)"))
		}
		if needREST && c.RESTTarget == "" {
			errs = append(errs, errors.New("the REST cases need --rest-target when --target is set (or select only gRPC cases)"))
		}
		if c.RESTTarget != "" && !strings.HasPrefix(c.RESTTarget, "http://") && !strings.HasPrefix(c.RESTTarget, "https://") {
			errs = append(errs, fmt.Errorf("REST target %q must be a URL such as http://localhost:8080", c.RESTTarget))
		}
	}
	if _, ok := LinkByName(c.Link); c.Link != "" && !ok {
		errs = append(errs, fmt.Errorf("link %q is not one of %s", c.Link, LinkNames()))
	}
	if c.apart() && (c.Target != "" || c.RESTTarget != "") {
		errs = append(errs, errors.New("--link and --apart start their own servers: they do not go with --target"))
	}
	if c.Service != nil && (c.Target != "" || c.RESTTarget != "" || c.apart()) {
		errs = append(errs, errors.New("a Service is served in-process only: not with a target, --link or --apart"))
	}
	if c.ServerPID != 0 && c.Target == "" && c.RESTTarget == "" {
		errs = append(errs, errors.New("a server PID only makes sense with --target: in-process, the server's CPU is this process's"))
	}
	return errors.Join(errs...)
}

// repeatErrors says what is wrong with the repetitions and the rules of a
// committed run.
func (c Config) repeatErrors() []error {
	var errs []error
	if c.Repeat < 1 || c.Repeat > MaxRepeat {
		errs = append(errs, fmt.Errorf("repeat %d must be between 1 and %d", c.Repeat, MaxRepeat))
	}
	if !c.Committed {
		return errs
	}
	if c.Duration < CommittedDuration || c.Warmup < CommittedWarmup || c.Repeat < CommittedRepeat {
		errs = append(errs, fmt.Errorf("a committed run measures each case at least %v after a warm-up of at least %v, at least %d times; this one %v after %v, %d times",
			CommittedDuration, CommittedWarmup, CommittedRepeat, c.Duration, c.Warmup, c.Repeat))
	}
	if c.Target != "" || c.RESTTarget != "" {
		errs = append(errs, errors.New("a committed run starts its own servers: it does not go with --target"))
	}
	return errs
}

// apart says whether the servers run in a process of their own.
func (c Config) apart() bool { return c.Apart || (c.Link != "" && c.Link != "loopback") }

func validFilter(f string) bool {
	t, m, both := strings.Cut(f, "/")
	if both {
		return slices.Contains(Transports, t) && slices.Contains(Methods, m)
	}
	return slices.Contains(Transports, f) || slices.Contains(Methods, f)
}

func (c Config) selected(transport, method string) bool {
	if len(c.Cases) == 0 {
		// A new TLS connection per call takes a handshake's CPU each:
		// the quick run leaves it to the full one.
		return c.Full || transport != TransportRESTCloseTLS
	}
	for _, f := range c.Cases {
		if f == transport || f == method || f == transport+"/"+method {
			return true
		}
	}
	return false
}

// unoffered says why a transport cannot carry a method against the run's
// targets, or "" when it can. The REST face streams NDJSON only, so
// protobuf has no stream case; a running backend offers h2c only at
// RESTH2Target, TLS only to a run that made its certificate, and the plain
// face is the bench's own.
func (c Config) unoffered(transport, method string) string {
	spec := transportSpecs[transport]
	if spec.proto && method == MethodStream {
		return "the REST face streams NDJSON only: protobuf has no line delimiter"
	}
	if c.Target == "" && c.RESTTarget == "" { // never apart, see Validate
		return ""
	}
	switch {
	case spec.plain:
		return "the plain net/http face is the bench's own: it runs only on servers the bench starts"
	case spec.tls:
		return "HTTPS needs the certificate of servers the bench starts"
	case spec.http2 && c.RESTH2Target == "":
		return "h2c needs --rest-h2-target, a REST face that speaks it"
	}
	return ""
}

// Skipped is a transport and method a run could not measure, and why.
type Skipped struct {
	Cases  string `json:"cases"` // "rest-proto/stream"
	Reason string `json:"reason"`
}

// cases lists the selected cases grouped so that the transports of one
// method, length and concurrency sit side by side.
func (c Config) cases() []Case {
	cases, _ := c.plan()
	return cases
}

// plan lists the selected cases, and the selected ones the run cannot
// measure, with the reason.
func (c Config) plan() ([]Case, []Skipped) {
	var cases []Case
	var skipped []Skipped
	seen := map[string]bool{}
	for _, conc := range c.Concurrency {
		for _, m := range Methods {
			lengths := c.Lengths
			if m == MethodHello {
				lengths = []int32{0}
			}
			for _, n := range lengths {
				for _, t := range Transports {
					if !c.selected(t, m) {
						continue
					}
					if why := c.unoffered(t, m); why != "" {
						if name := t + "/" + m; !seen[name] {
							seen[name] = true
							skipped = append(skipped, Skipped{Cases: name, Reason: why})
						}
						continue
					}
					cases = append(cases, Case{Transport: t, Method: m, Length: n, Concurrency: conc})
				}
			}
		}
	}
	return cases, skipped
}

// Run runs every selected case, one after the other, and returns the report.
// Each case stops by itself after its warm-up and duration. When ctx ends
// early, Run returns the cases done so far with ctx's error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	cases, skipped := cfg.plan()
	r := newReport(cfg)
	r.Skipped = skipped
	start := time.Now()
	r.LoadAverage = append(r.LoadAverage, loadAverage())
	if load := r.LoadAverage[0]; cfg.Committed && load > MaxCommittedLoad {
		return nil, fmt.Errorf("%w: the load average is %.2f, above %.0f, so other work would be measured too; "+
			"run it again when the machine is quiet, or without --committed for a look", ErrBusy, load, MaxCommittedLoad)
	}
	env, err := startEnv(ctx, &cfg, r)
	if err != nil {
		return nil, err
	}
	defer env.close()
	cs, err := newClients(env.targets, slices.Max(cfg.Concurrency), env.dial)
	if err != nil {
		return nil, err
	}
	defer cs.Close()
	defer func() {
		r.LoadAverage = append(r.LoadAverage, loadAverage())
		r.Elapsed = time.Since(start).Seconds()
	}()
	// The first case runs once unrecorded before it: a run's first calls
	// (connections, heaps growing) would otherwise count against it.
	warm := cfg
	warm.Progress, warm.Duration = nil, max(cfg.Warmup, 100*time.Millisecond)
	if _, err := runCase(ctx, warm, cs, env.counter, nil, cases[0], 0, 0); err != nil {
		return r, err
	}
	runs := make(map[Case][]Result, len(cases))
	defer func() {
		for _, c := range cases {
			if len(runs[c]) > 0 {
				r.Cases = append(r.Cases, aggregate(runs[c]))
			}
		}
	}()
	total, index := len(cases)*cfg.Repeat, 0
	clock := &runClock{start: time.Now(), planned: cfg.Warmup + cfg.Duration + 300*time.Millisecond}
	for rep := range cfg.Repeat {
		for _, c := range interleaved(cases, rep) {
			index++
			res, err := runCase(ctx, cfg, cs, env.counter, clock, c, index, total)
			if err != nil {
				return r, err
			}
			runs[c] = append(runs[c], res)
		}
	}
	return r, nil
}

// ErrBusy is Run's refusal of a committed run on a busy machine.
var ErrBusy = errors.New("not a committed run")

func newReport(cfg Config) *Report {
	return &Report{
		Started:     time.Now().UTC(),
		Duration:    cfg.Duration.Seconds(),
		Warmup:      cfg.Warmup.Seconds(),
		Lengths:     cfg.Lengths,
		Concurrency: cfg.Concurrency,
		GOOS:        runtime.GOOS,
		GOARCH:      runtime.GOARCH,
		CPUs:        runtime.NumCPU(),
		GoVersion:   runtime.Version(),
		InProcess:   cfg.Target == "" && cfg.RESTTarget == "" && !cfg.apart(),
		Repeat:      cfg.Repeat,
		Committed:   cfg.Committed,
		CodecNote:   codecNote,
		LimitsNote:  limitsNote,
	}
}

// env is where a run's clients call, and how to take it down.
type env struct {
	targets targets
	dial    dialFunc
	close   func() error
	// counter counts the Service's calls, in this process or apart; nil
	// against a running backend.
	counter serviceCounter
}

// serviceCounter reads the counts of a countingService.
type serviceCounter interface{ snapshot() map[string]int64 }

// startEnv starts the servers a run needs, in-process or apart, or points at
// the running ones; it sets the report's notes and, apart, cfg's ServerPID.
func startEnv(ctx context.Context, cfg *Config, r *Report) (*env, error) {
	e := &env{
		targets: targets{grpc: cfg.Target, rest: cfg.RESTTarget, restH2: cfg.RESTH2Target},
		close:   func() error { return nil },
	}
	switch {
	case cfg.apart():
		link, _ := LinkByName(cfg.Link)
		if cfg.Link == "" {
			link = Links[0]
		}
		a, err := startApart(ctx, link)
		if err != nil {
			return nil, err
		}
		e.targets, e.dial, e.close, cfg.ServerPID, e.counter = a.targets, a.dial, a.Close, a.pid, a
		r.Link = &a.report
		r.CPUNote = "the load client's CPU time per call (getrusage); SRV CPU (server_cpu_us_per_call) is the server process's, from /proc/PID/stat (10ms resolution)"
		if a.report.ClientCPU >= 0 {
			r.CPUNote += fmt.Sprintf("; client pinned to core %d, server to core %d", a.report.ClientCPU, a.report.ServerCPU)
		}
		if a.proxy != nil {
			r.CPUNote += "; the delay proxy is a third process, counted in neither"
		}
	case r.InProcess:
		local, err := StartLocal(cfg.Service)
		if err != nil {
			return nil, err
		}
		e.targets = targets{grpc: local.GRPCAddr, rest: local.RESTURL, restH2: local.RESTH2URL, restTLS: local.RESTTLSURL,
			restPlain: local.PlainURL, certPEM: local.CertPEM}
		e.counter = local.counter
		e.close = local.Close
		r.CPUNote = "the CPU time of the whole bench process per call: load client, gRPC server and REST gateway together (getrusage)"
	default:
		r.CPUNote = "the load client's CPU time per call (getrusage)"
		if cfg.ServerPID != 0 {
			r.CPUNote += "; SRV CPU (server_cpu_us_per_call) is the server process's, from /proc/PID/stat (10ms resolution)"
		}
	}
	return e, nil
}

// worker is one goroutine's tally, read live by the progress reports. calls
// and errors count in the measured time only; items counts every item
// received, and snapshots take the difference.
type worker struct {
	calls, errors, items atomic.Int64
	// answered counts every call that succeeded, in the measured time or
	// not, for the comparison with the Service's own count.
	answered atomic.Int64
	hist     histogram
	firstErr error
	_        [64]byte // keeps workers' counters off each other's cache lines
}

// caseRun is one case being run: its settings, its workers and the
// snapshots that bound its measured time. runCase walks it through named
// steps: probe, start, drive, collect.
type caseRun struct {
	cfg          Config
	c            Case
	do           call
	wire         *countingDialer
	counter      serviceCounter // nil: the Service runs elsewhere
	clock        *runClock      // nil: a case outside the run's count
	probed       int64          // 1 when the probe call succeeded
	index, total int

	// minCalls is how many calls must end before the measured time may
	// stop; overtime bounds how long it may wait for them.
	minCalls int64
	overtime time.Duration
	begin    time.Time

	caseCtx  context.Context
	cancel   context.CancelFunc
	stopping chan struct{}
	// counting is set when the measured time starts: calls that end before
	// are warm-up.
	counting atomic.Bool
	workers  []*worker
	wg       sync.WaitGroup

	first, last     snapshot
	measuring       bool
	overtimeRunning bool
	endTimer        <-chan time.Time

	res Result
}

// snapshot is what the counters read at one moment; a case's figures are
// the differences between the snapshots at the start and end of its
// measured time.
type snapshot struct {
	at        time.Time
	cpu, wire int64
	items     int64
	server    time.Duration
	serverErr error
}

func runCase(ctx context.Context, cfg Config, cs *clients, counter serviceCounter, clock *runClock, c Case, index, total int) (Result, error) {
	r := &caseRun{
		cfg: cfg, c: c, do: cs.call(c), wire: cs.wire(c.Transport), counter: counter, clock: clock, index: index, total: total,
		res: Result{Case: c, Name: c.String()},
	}
	r.progress(Progress{Phase: PhaseWarmup})
	if err := settle(ctx, cpuOf(cfg)); err != nil {
		return r.res, err
	}
	var before map[string]int64
	if counter != nil {
		before = counter.snapshot()
	}
	if err := r.probe(ctx); err != nil {
		return r.res, err
	}
	r.start(ctx)
	defer r.cancel()
	if err := r.drive(ctx); err != nil {
		return r.res, err
	}
	r.wg.Wait()
	r.collect()
	if counter != nil {
		r.res.Handlers = diffCounts(before, counter.snapshot())
		r.res.Answered = r.probed
		for _, w := range r.workers {
			r.res.Answered += w.answered.Load()
		}
	}
	r.progress(Progress{Phase: PhaseDone, Elapsed: r.last.at.Sub(r.first.at), Calls: r.res.Calls, Errors: r.res.Errors, Result: &r.res})
	return r.res, nil
}

func (r *caseRun) progress(p Progress) {
	if r.cfg.Progress != nil {
		p.Index, p.Total, p.Case, p.Duration = r.index, r.total, r.c, r.cfg.Duration
		if r.clock != nil {
			p.Left = r.clock.left(r.index, r.total, p.Phase == PhaseDone)
		}
		r.cfg.Progress(p)
	}
}

// probe makes one call first, outside the measured time, for the body size
// (the same for every call of a case) and to fail fast on a broken target.
func (r *caseRun) probe(ctx context.Context) error {
	probeCtx, cancelProbe := context.WithTimeout(ctx, callGrace)
	_, body, err := r.do(probeCtx, true, new(atomic.Int64))
	cancelProbe()
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if err != nil {
		r.res.FirstError = err.Error()
	} else {
		r.res.BodyBytes, r.probed = body, 1
	}
	return nil
}

// start launches the case's workers.
func (r *caseRun) start(ctx context.Context) {
	r.begin = time.Now()
	// Replies that take longer than the duration (getAll(100,000) at 50
	// concurrent) would show as none at all, so the measured time runs on
	// until each worker could have finished one call, up to overtime.
	// Streams need no call to end, since their items count as they
	// arrive, but at least one item, which a busy machine may not have
	// delivered in a short measured time.
	r.minCalls = int64(r.c.Concurrency)
	if r.c.Method == MethodStream {
		r.minCalls = 0
	}
	r.overtime = min(10*r.cfg.Duration, maxOvertime)
	hardEnd := r.begin.Add(r.cfg.Warmup + r.cfg.Duration + r.overtime)
	// When the measured time ends, workers start no new call. Streams in
	// flight are cancelled, which stops their servers at once; unary calls
	// run to the end, uncounted, since cancelling them would leave the
	// server still building their replies during the next case. The
	// deadline bounds them.
	r.caseCtx, r.cancel = context.WithDeadline(ctx, hardEnd.Add(callGrace))
	r.stopping = make(chan struct{})
	r.workers = make([]*worker, r.c.Concurrency)
	for i := range r.workers {
		w := &worker{}
		r.workers[i] = w
		r.wg.Go(func() { r.work(w) })
	}
}

func (r *caseRun) stopped() bool {
	select {
	case <-r.stopping:
		return true
	default:
		return false
	}
}

// work is one worker's loop: calls one after the other until the measured
// time ends, counting those that end inside it.
func (r *caseRun) work(w *worker) {
	for !r.stopped() {
		start := time.Now()
		_, _, err := r.do(r.caseCtx, false, &w.items)
		end := time.Now()
		if err == nil {
			w.answered.Add(1)
		}
		if r.stopped() || r.caseCtx.Err() != nil {
			return
		}
		if !r.counting.Load() {
			continue
		}
		if err != nil {
			if w.firstErr == nil {
				w.firstErr = err
			}
			w.errors.Add(1)
			continue
		}
		w.hist.record(end.Sub(start))
		w.calls.Add(1)
	}
}

// enough says whether the measured time has what it needs to end: a
// call from each worker, or for streams one item.
func (r *caseRun) enough() bool {
	calls, errs := r.sum()
	if r.c.Method != MethodStream {
		return calls+errs >= r.minCalls
	}
	if calls+errs > 0 {
		return true
	}
	var items int64
	for _, w := range r.workers {
		items += w.items.Load()
	}
	return items > r.first.items
}

func (r *caseRun) sum() (calls, errs int64) {
	for _, w := range r.workers {
		calls += w.calls.Load()
		errs += w.errors.Load()
	}
	return calls, errs
}

func (r *caseRun) snap() snapshot {
	s := snapshot{at: time.Now(), cpu: int64(processCPU()), wire: r.wire.read.Load()}
	for _, w := range r.workers {
		s.items += w.items.Load()
	}
	if r.cfg.ServerPID != 0 {
		s.server, s.serverErr = pidCPU(r.cfg.ServerPID)
	}
	return s
}

// finish takes the last snapshot and tells the workers to stop.
func (r *caseRun) finish() {
	r.last = r.snap()
	close(r.stopping)
	if r.c.Method == MethodStream {
		r.cancel()
	}
}

// drive runs the case's clock: warm-up, measured time, overtime, with
// progress reports between. It returns when the workers have been told to
// stop, with ctx's error if ctx ended first.
func (r *caseRun) drive(ctx context.Context) error {
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	windowTimer := time.NewTimer(r.cfg.Warmup)
	defer windowTimer.Stop()
	for {
		select {
		case <-windowTimer.C:
			r.first = r.snap()
			r.counting.Store(true)
			r.measuring = true
			// The measured time's end is set when it starts, however late.
			r.endTimer = time.After(r.cfg.Duration)
			r.progress(Progress{Phase: PhaseMeasure})
		case <-tick.C:
			if r.onTick() {
				return nil
			}
		case <-r.endTimer:
			if !r.enough() {
				r.overtimeRunning = true
				continue
			}
			r.finish()
			return nil
		case <-r.caseCtx.Done():
			if err := ctx.Err(); err != nil {
				close(r.stopping)
				r.wg.Wait()
				return err
			}
			// Only a machine too busy to run this loop for the whole
			// overtime gets here.
			r.finish()
			return nil
		}
	}
}

// onTick reports progress and ends the overtime when it has its calls or
// has run out; it says whether the case is over.
func (r *caseRun) onTick() bool {
	calls, errs := r.sum()
	if r.overtimeRunning && (r.enough() || time.Since(r.first.at) > r.cfg.Duration+r.overtime) {
		r.finish()
		return true
	}
	if r.measuring {
		r.progress(Progress{Phase: PhaseMeasure, Elapsed: time.Since(r.first.at), Calls: calls, Errors: errs})
	} else {
		r.progress(Progress{Phase: PhaseWarmup, Elapsed: time.Since(r.begin)})
	}
	return false
}

// collect turns the workers' tallies and the two snapshots into the result.
func (r *caseRun) collect() {
	if !r.measuring {
		r.first = r.last
	}
	res := &r.res
	var hist histogram
	for _, w := range r.workers {
		hist.merge(&w.hist)
		res.Calls += w.calls.Load()
		res.Errors += w.errors.Load()
		if res.FirstError == "" && w.firstErr != nil {
			res.FirstError = w.firstErr.Error()
		}
	}
	res.Seconds = r.last.at.Sub(r.first.at).Seconds()
	if res.Seconds > 0 {
		res.CallsPerSec = float64(res.Calls) / res.Seconds
		if r.c.Method != MethodHello {
			res.ItemsPerSec = float64(r.last.items-r.first.items) / res.Seconds
		}
	}
	res.Latency = Latency{
		P50: ms(hist.quantile(0.50)),
		P90: ms(hist.quantile(0.90)),
		P99: ms(hist.quantile(0.99)),
		Max: ms(hist.max),
	}
	if res.Calls == 0 {
		return
	}
	calls := float64(res.Calls)
	res.WireBytes = float64(r.last.wire-r.first.wire) / calls
	res.CPUPerCall = float64(r.last.cpu-r.first.cpu) / 1e3 / calls
	if r.cfg.ServerPID != 0 && r.first.serverErr == nil && r.last.serverErr == nil {
		v := float64(r.last.server-r.first.server) / 1e3 / calls
		res.ServerCPUPerCall = &v
	}
}

// runClock estimates the time a run has left.
type runClock struct {
	start   time.Time
	planned time.Duration // a case's warm-up and duration, and a margin
}

// left is the estimate while case index of total runs, or once it is done:
// the cases to come at the mean time of those done, or at the planned time
// before any is.
func (c *runClock) left(index, total int, done bool) time.Duration {
	elapsed := time.Since(c.start)
	finished := index - 1
	if done {
		finished = index
	}
	per := c.planned
	if finished > 0 {
		per = elapsed / time.Duration(finished)
	}
	left := per*time.Duration(total) - elapsed
	return max(left, 0)
}

// callGrace is how long a call still running at the end of its case may
// take to finish.
const callGrace = 30 * time.Second

// maxOvertime bounds how long a case's measured time may run past its
// duration while waiting for slow calls.
const maxOvertime = 30 * time.Second

// settleLimit bounds the wait for a quiet server between cases.
const settleLimit = 5 * time.Second

// cpuOf returns how to read the server's CPU time, or nil when it is not
// measurable (a server in another process whose PID is unknown).
func cpuOf(cfg Config) func() (time.Duration, error) {
	switch {
	case cfg.ServerPID != 0:
		return func() (time.Duration, error) { return pidCPU(cfg.ServerPID) }
	case cfg.Target == "" && cfg.RESTTarget == "":
		return func() (time.Duration, error) { return processCPU(), nil }
	}
	return nil
}

// settle waits, up to settleLimit, until the server uses less than a tenth
// of a CPU, so that work left over from one case (replies still being built
// for calls that were abandoned) is not charged to the next.
func settle(ctx context.Context, cpu func() (time.Duration, error)) error {
	if cpu == nil {
		return nil
	}
	const every = 50 * time.Millisecond
	tick := time.NewTicker(every)
	defer tick.Stop()
	limit := time.NewTimer(settleLimit)
	defer limit.Stop()
	prev, err := cpu()
	if err != nil {
		return nil
	}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-limit.C:
			return nil
		case <-tick.C:
			now, err := cpu()
			if err != nil || now-prev < every/10 {
				return nil
			}
			prev = now
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
