package cli

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/grpcplay/grpcplay/bench"
	"github.com/grpcplay/grpcplay/bench/compare"
)

// benchCmd is `grpcplay bench`: gRPC against REST/JSON, in-process by
// default.
type benchCmd struct {
	cfg    bench.Config
	fs     *flag.FlagSet
	output string
	svg    string
}

func (c *benchCmd) define(fs *flag.FlagSet, _ func(string) string) {
	c.cfg = bench.Config{
		Lengths:     bench.DefaultLengths,
		Concurrency: bench.DefaultConcurrency,
	}
	c.fs = fs
	fs.DurationVar(&c.cfg.Duration, "duration", bench.DefaultDuration, fmt.Sprintf("measured time of each case (--full: %v, --committed: %v)", bench.FullDuration, bench.CommittedDuration))
	fs.DurationVar(&c.cfg.Warmup, "warmup", bench.DefaultWarmup, fmt.Sprintf("load before each case's measured time, not counted (--full, --committed: %v)", bench.FullWarmup))
	fs.Var(listFlag[int32]{&c.cfg.Lengths, 32}, "lengths", "comma-separated lengths of getAll and getStream (--full: "+listFlag[int32]{&bench.FullLengths, 32}.String()+")")
	fs.Var(listFlag[int]{&c.cfg.Concurrency, 0}, "concurrency", "comma-separated numbers of calls in flight at once")
	fs.Var(stringsFlag{&c.cfg.Cases}, "cases", "comma-separated cases to run: transports ("+strings.Join(bench.Transports, ", ")+
		"), methods (hello, items, stream) or TRANSPORT/METHOD; empty: all but rest-close-tls, which --full adds")
	fs.BoolVar(&c.cfg.Full, "full", false, "the whole matrix: every transport, lengths "+listFlag[int32]{&bench.FullLengths, 32}.String()+", 3s a case (about 10 minutes)")
	fs.IntVar(&c.cfg.Repeat, "repeat", 1, "measure each case this many times, interleaved across transports; the report gives medians and spread")
	fs.BoolVar(&c.cfg.Committed, "committed", false, fmt.Sprintf("figures for the docs: servers apart, each case %v after %v of warm-up, %d times; refused when the load average is above %g",
		bench.CommittedDuration, bench.CommittedWarmup, bench.CommittedRepeat, bench.MaxCommittedLoad))
	fs.StringVar(&c.cfg.Target, "target", "", "gRPC target of a running backend (default: start one in-process on loopback)")
	fs.StringVar(&c.cfg.RESTTarget, "rest-target", "", "base URL of the running backend's REST face, such as http://localhost:8080")
	fs.IntVar(&c.cfg.ServerPID, "server-pid", 0, "with --target, the server's process id, to report its CPU time per call (Linux)")
	fs.StringVar(&c.cfg.Link, "link", "", "emulated link between client and server: "+bench.LinkNames()+" (servers in their own process; see docs/network.md)")
	fs.BoolVar(&c.cfg.Apart, "apart", false, "run the servers in their own process, pinned to another core than the client's")
	fs.StringVar(&c.output, "o", "text", "output format: text or json")
	fs.StringVar(&c.svg, "svg", "", "also write the chart to this SVG file")
}

func (c *benchCmd) validate(func(string) string) []error {
	set := map[string]bool{}
	c.fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	// --full and --committed change the defaults of the flags not given.
	if c.cfg.Full && !set["duration"] {
		c.cfg.Duration = bench.FullDuration
	}
	if c.cfg.Full && !set["warmup"] {
		c.cfg.Warmup = bench.FullWarmup
	}
	if c.cfg.Full && !set["lengths"] {
		c.cfg.Lengths = bench.FullLengths
	}
	if c.cfg.Committed && !set["duration"] {
		c.cfg.Duration = max(c.cfg.Duration, bench.CommittedDuration)
	}
	if c.cfg.Committed && !set["warmup"] {
		c.cfg.Warmup = max(c.cfg.Warmup, bench.CommittedWarmup)
	}
	if c.cfg.Committed && !set["repeat"] {
		c.cfg.Repeat = max(c.cfg.Repeat, bench.CommittedRepeat)
	}
	var errs []error
	if c.output != "text" && c.output != "json" {
		errs = append(errs, fmt.Errorf("-o must be text or json, not %q", c.output))
	}
	if c.cfg.Duration == 0 {
		errs = append(errs, errors.New("--duration must be more than 0"))
	}
	if c.cfg.Repeat < 1 {
		// Zero would be the default, once, to bench.Config.
		errs = append(errs, fmt.Errorf("--repeat %d must be between 1 and %d", c.cfg.Repeat, bench.MaxRepeat))
	}
	if err := c.cfg.Validate(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func (c *benchCmd) run(ctx context.Context, m *Main) error {
	cfg := c.cfg
	cfg.Progress = bench.TerminalProgress(m.Stderr, isTerminal(m.Stderr))
	r, err := bench.Run(ctx, cfg)
	if r == nil {
		return err
	}
	r.Command = c.command()
	// Cases finished before an interrupt are still worth printing.
	var out bytes.Buffer
	if c.output == "json" {
		if werr := r.WriteJSON(&out); werr != nil {
			return werr
		}
	} else if werr := r.WriteTable(&out); werr != nil {
		return werr
	}
	if _, werr := m.Stdout.Write(out.Bytes()); werr != nil {
		return werr
	}
	if c.svg != "" {
		if werr := os.WriteFile(c.svg, []byte(r.SVG()), 0o644); werr != nil {
			return werr
		}
	}
	return err
}

// command is the command line that reproduces the run, for the report.
func (c *benchCmd) command() string {
	args := []string{"grpcplay", "bench"}
	c.fs.Visit(func(f *flag.Flag) {
		if f.Name != "o" && f.Name != "svg" {
			args = append(args, "--"+f.Name+"="+f.Value.String())
		}
	})
	return strings.Join(args, " ")
}

// listFlag is a comma-separated list of integers; bits bounds each one.
type listFlag[T int | int32] struct {
	v    *[]T
	bits int
}

func (f listFlag[T]) String() string {
	if f.v == nil {
		return ""
	}
	parts := make([]string, len(*f.v))
	for i, n := range *f.v {
		parts[i] = strconv.Itoa(int(n))
	}
	return strings.Join(parts, ",")
}

func (f listFlag[T]) Set(s string) error {
	var list []T
	for part := range strings.SplitSeq(s, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(part), 10, f.bits)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", part)
		}
		list = append(list, T(n))
	}
	*f.v = list
	return nil
}

// stringsFlag is a comma-separated list of words.
type stringsFlag struct{ v *[]string }

func (f stringsFlag) String() string {
	if f.v == nil {
		return ""
	}
	return strings.Join(*f.v, ",")
}

func (f stringsFlag) Set(s string) error {
	*f.v = nil
	for part := range strings.SplitSeq(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			*f.v = append(*f.v, part)
		}
	}
	return nil
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	info, err := f.Stat()
	return err == nil && info.Mode()&os.ModeCharDevice != 0
}

// pageBench is what /compare runs on demand: every transport, a short and
// a long reply, each case three times so that the page shows the spread,
// on its own in-process servers so that it measures the same as `grpcplay
// bench` and leaves the served ones alone.
var pageBench = bench.Config{
	Duration:    300 * time.Millisecond,
	Warmup:      100 * time.Millisecond,
	Repeat:      3,
	Lengths:     []int32{10, 1000},
	Concurrency: []int{8},
	Cases:       []string{bench.MethodItems, bench.MethodStream},
}

// pageBenchEstimate is what the page says pageBench takes until a run has
// measured it: 28 cases, 3 times, each 0.4 s of load and about as much
// again to start and stop its clients (measured: 44 s on two cores busy
// with other work, under the race detector).
const pageBenchEstimate = 40 * time.Second

func linkFlag(link string) string {
	if link == "" {
		return ""
	}
	return " --link=" + link
}

func linkNote(r *bench.Report) string {
	if r.Link == nil {
		return "Link: loopback, servers in this process."
	}
	return "Link: " + r.Link.String() + "."
}

// benchComparer runs pageBench for the frontend's /compare page.
type benchComparer struct{ cfg bench.Config }

func (b benchComparer) Compare(ctx context.Context, progress func(compare.Progress)) (*compare.Comparison, error) {
	return b.CompareLink(ctx, "", progress)
}

// Links offers bench's emulated links where they can be made: they need
// root, for network namespaces and tbf.
func (b benchComparer) Links() ([]string, string) {
	if os.Geteuid() != 0 {
		return nil, "Only loopback here: emulated links need the server to run as root (network namespaces and tbf). `grpcplay bench --link` shows them on a terminal."
	}
	var names []string
	for _, l := range bench.Links[1:] {
		names = append(names, l.Name)
	}
	return names, ""
}

func (b benchComparer) CompareLink(ctx context.Context, link string, progress func(compare.Progress)) (*compare.Comparison, error) {
	cfg := b.cfg
	cfg.Link = link
	cfg.Progress = func(p bench.Progress) {
		done := p.Index - 1
		if p.Phase == bench.PhaseDone {
			done = p.Index
		}
		progress(compare.Progress{Done: done, Total: p.Total, Case: p.Case.String()})
	}
	r, err := bench.Run(ctx, cfg)
	if err != nil {
		return nil, err
	}
	var chart strings.Builder
	if err := r.WriteSVG(&chart); err != nil {
		return nil, err
	}
	return &compare.Comparison{
		Header: bench.TableHeader,
		Rows:   r.Rows(),
		// Our own chart: its text is escaped and it has no style or script.
		Chart: template.HTML(chart.String()),
		Command: fmt.Sprintf("grpcplay bench --cases=%s --lengths=%s --concurrency=%s --repeat=%d%s",
			strings.Join(cfg.Cases, ","), listFlag[int32]{&cfg.Lengths, 32}, listFlag[int]{&cfg.Concurrency, 0}, cfg.Repeat, linkFlag(link)),
		Notes: []string{
			linkNote(r),
			fmt.Sprintf("%gs per case after a %gs warm-up, on the machine that serves this page, next to whatever else it runs: a quick look, not a measurement.", r.Duration, r.Warmup),
			"CPU/CALL: " + r.CPUNote + ".",
		},
		Finished: time.Now(),
	}, nil
}
