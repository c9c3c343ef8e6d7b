package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Report is the outcome of a run: its settings, the machine, and every case.
type Report struct {
	Started     time.Time `json:"started"`
	Command     string    `json:"command,omitempty"`
	Duration    float64   `json:"duration_seconds"`
	Warmup      float64   `json:"warmup_seconds"`
	Lengths     []int32   `json:"lengths"`
	Concurrency []int     `json:"concurrency"`
	GOOS        string    `json:"goos"`
	GOARCH      string    `json:"goarch"`
	CPUs        int       `json:"cpus"`
	GoVersion   string    `json:"go_version"`
	// InProcess is true when the servers ran inside the bench process, on
	// loopback, sharing its CPUs with the load.
	InProcess bool `json:"in_process"`
	// Link is the emulated link of a run apart, as profiled and measured.
	Link *LinkReport `json:"link,omitempty"`
	// Split is Halves, filled in by WriteJSON.
	Split   *Halves `json:"halves,omitempty"`
	CPUNote string  `json:"cpu_note"`
	// LoadAverage is the machine's one-minute load average at the start and
	// the end of the cases: the other work it had besides the bench.
	LoadAverage []float64 `json:"load_average,omitempty"`
	// BytesNote says what the byte columns count.
	BytesNote string `json:"bytes_note"`
	// Repeat is how many times each case ran, interleaved (see Config);
	// Committed says the run met the rules of figures the docs quote;
	// Elapsed is how long the run took, servers' start included.
	Repeat    int     `json:"repeat"`
	Committed bool    `json:"committed"`
	Elapsed   float64 `json:"elapsed_seconds"`
	// Skipped are the selected cases this run could not measure, and why.
	Skipped []Skipped `json:"skipped,omitempty"`
	// CodecNote and LimitsNote say what each face's protobuf codec and
	// admission limits were, where they differ.
	CodecNote  string   `json:"codec_note"`
	LimitsNote string   `json:"limits_note"`
	Cases      []Result `json:"cases"`
}

const bytesNote = "body_bytes_per_call is the response payload: protobuf messages with gRPC's 5-byte prefix each, or the JSON body; " +
	"wire_bytes_per_call is every byte the client read from its sockets per call, HTTP headers and HTTP/2 framing included, TCP/IP headers not"

// Result is one case's measurements over its measured time.
type Result struct {
	Case
	Name       string  `json:"name"`
	Seconds    float64 `json:"seconds"`
	Calls      int64   `json:"calls"`
	Errors     int64   `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	// CallsPerSec counts the calls that ended in the measured time;
	// ItemsPerSec the items that arrived in it, including those of streams
	// cut by its start or end, so that it holds for streams longer than it.
	CallsPerSec float64 `json:"calls_per_sec"`
	ItemsPerSec float64 `json:"items_per_sec"`
	Latency     Latency `json:"latency_ms"`
	BodyBytes   int64   `json:"body_bytes_per_call"`
	WireBytes   float64 `json:"wire_bytes_per_call"`
	CPUPerCall  float64 `json:"cpu_us_per_call"`
	// ServerCPUPerCall is set only when the server's CPU time was readable.
	ServerCPUPerCall *float64 `json:"server_cpu_us_per_call,omitempty"`
	// Handlers counts the Service's calls during the case, warm-up and
	// probe included, by method and by the handler path that made them
	// ("GetAll via grpc-go"), and Answered the calls that succeeded in
	// that time: the two agree, but for streams cut at the case's end,
	// when every face runs the same Service methods once per request. Set
	// when the Service ran in the bench's process.
	Handlers map[string]int64 `json:"service_calls,omitempty"`
	Answered int64            `json:"answered,omitempty"`
	// Runs are the repetitions' own figures, when there were several; the
	// figures above are then their medians, and Spread is the range of
	// their throughput over its median.
	Runs   []Repetition `json:"runs,omitempty"`
	Spread float64      `json:"spread,omitempty"`
}

// Latency holds percentiles of the successful calls, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	r.BytesNote = bytesNote
	if h := r.Halves(); h.Cases > 0 {
		r.Split = &h
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// grpcBaseline finds the gRPC case that a REST case compares with.
func (r *Report) grpcBaseline(c Case) *Result {
	for i := range r.Cases {
		b := &r.Cases[i]
		if b.Transport == TransportGRPC && b.Method == c.Method && b.Length == c.Length && b.Concurrency == c.Concurrency {
			return b
		}
	}
	return nil
}

// VsGRPC is a REST case's throughput over the gRPC case's with the same
// method, length and concurrency, or 0 when there is none: items/s, which
// holds for streams longer than the measured time, or calls/s for sayHello.
func (r *Report) VsGRPC(res *Result) float64 {
	if res.Transport == TransportGRPC {
		return 0
	}
	b := r.grpcBaseline(res.Case)
	if b == nil || throughput(b) == 0 {
		return 0
	}
	return throughput(res) / throughput(b)
}

func throughput(r *Result) float64 {
	if r.Method == MethodHello {
		return r.CallsPerSec
	}
	return r.ItemsPerSec
}

// TableHeader names the columns of Rows.
var TableHeader = []string{"TRANSPORT", "CALL", "C", "CALLS/S", "ITEMS/S", "SPREAD", "VS GRPC", "P50", "P99", "CPU/CALL", "SRV CPU", "ERRORS"}

// callName is a case's call as the post names it: getAll(1000).
func callName(c Case) string {
	switch c.Method {
	case MethodHello:
		return "sayHello"
	case MethodItems:
		return fmt.Sprintf("getAll(%d)", c.Length)
	}
	return fmt.Sprintf("getStream(%d)", c.Length)
}

// outlasted says that a case's streams each took longer than its measured
// time: no call ended in it, but items arrived.
func outlasted(c *Result) bool { return c.Calls == 0 && c.Errors == 0 && c.ItemsPerSec > 0 }

// Rows formats every case as the cells of a table, under TableHeader. A
// case that could not measure a figure shows why in its place: "failed"
// (its errors are in Notes), or "-" for calls/s of streams longer than the
// measured time.
func (r *Report) Rows() [][]string {
	rows := make([][]string, 0, len(r.Cases))
	for i := range r.Cases {
		c := &r.Cases[i]
		calls, items := Short(c.CallsPerSec), "-"
		if c.Method != MethodHello {
			items = Short(c.ItemsPerSec)
		}
		switch {
		case outlasted(c):
			calls = "-"
		case c.Calls == 0:
			calls, items = "failed", "-"
		}
		vs, spread := "-", "-"
		if v := r.VsGRPC(c); v > 0 {
			vs = fmt.Sprintf("%.2fx", v)
		}
		if len(c.Runs) > 1 {
			spread = fmt.Sprintf("%.0f%%", 100*c.Spread)
		}
		srv := "-"
		if c.ServerCPUPerCall != nil {
			srv = micros(*c.ServerCPUPerCall)
		}
		p50, p99, cpu := "-", "-", "-"
		if c.Calls > 0 {
			p50, p99, cpu = millis(c.Latency.P50), millis(c.Latency.P99), micros(c.CPUPerCall)
		}
		rows = append(rows, []string{
			c.Transport, callName(c.Case), strconv.Itoa(c.Concurrency),
			calls, items, spread, vs, p50, p99, cpu, srv, strconv.FormatInt(c.Errors, 10),
		})
	}
	return rows
}

// Notes explain what the table cannot: the cases skipped and why, the
// cases that failed with their first error, and streams that outlasted
// the measured time.
func (r *Report) Notes() []string {
	var notes []string
	for _, s := range r.Skipped {
		notes = append(notes, fmt.Sprintf("%s not run: %s.", s.Cases, s.Reason))
	}
	long := map[string]bool{}
	for i := range r.Cases {
		c := &r.Cases[i]
		switch {
		case outlasted(c):
			if name := callName(c.Case); !long[name] {
				long[name] = true
				notes = append(notes, fmt.Sprintf("%s: no stream ended in the %gs measured (a long stream outlasts it): "+
					"calls/s is not shown, items/s counts every item that arrived.", name, r.Duration))
			}
		case c.Errors > 0 || (c.Calls == 0 && c.FirstError != ""):
			notes = append(notes, fmt.Sprintf("%s/%s c=%d: %d calls, %d errors; the first: %s",
				c.Transport, callName(c.Case), c.Concurrency, c.Calls, c.Errors, truncate(c.FirstError, 200)))
		}
	}
	return notes
}

// WriteTable writes the report as an aligned text table, under 100
// columns, grouped by call and concurrency, with its notes and summary.
func (r *Report) WriteTable(w io.Writer) error {
	if _, err := io.WriteString(w, r.table()); err != nil {
		return err
	}
	_, err := io.WriteString(w, wrap(r.footer(), 100))
	return err
}

// table is the aligned rows, under a heading per call and concurrency.
func (r *Report) table() string {
	// Each group's call and concurrency head it, once: the rows need
	// only the transport and the figures.
	header := append([]string{TableHeader[0]}, TableHeader[3:]...)
	rows := r.Rows()
	width := make([]int, len(header))
	cells := func(row []string) []string { return append([]string{row[0]}, row[3:]...) }
	for _, row := range append([][]string{header}, rows...) {
		if len(row) == len(TableHeader) {
			row = cells(row)
		}
		for i, c := range row {
			width[i] = max(width[i], utf8.RuneCountInString(c))
		}
	}
	line := func(row []string) string {
		var b strings.Builder
		for i, c := range row {
			pad := strings.Repeat(" ", width[i]-utf8.RuneCountInString(c))
			if i == 0 {
				b.WriteString(c + pad)
			} else {
				b.WriteString("  " + pad + c)
			}
		}
		return b.String() + "\n"
	}
	var t strings.Builder
	t.WriteString(line(header))
	group := ""
	for i, row := range rows {
		c := r.Cases[i].Case
		if g := fmt.Sprintf("%s, %d concurrent", callName(c), c.Concurrency); g != group {
			group = g
			t.WriteString(g + "\n")
		}
		t.WriteString(line(cells(row)))
	}
	return t.String()
}

// footer is the notes, the same-work check, the run's settings and the
// summary under the table.
func (r *Report) footer() string {
	var b strings.Builder
	for _, n := range r.Notes() {
		b.WriteString("\n" + n)
	}
	// Cut streams reach the Service unanswered: one a worker, and the
	// previous case's may arrive late.
	slack := int64(2 * slices.Max(append(r.Concurrency, 1)))
	switch checked, wrong := r.SameWork(slack); {
	case len(wrong) > 0:
		b.WriteString("\nNOT THE SAME WORK: " + strings.Join(wrong, "; "))
	case checked > 0:
		fmt.Fprintf(&b, "\nSame work: in all %d cases, each face called the same Service methods once per answered call, "+
			"through its own handler (service_calls in -o json).", checked)
	}
	if r.Link != nil {
		fmt.Fprintf(&b, "\n\n%s.", r.Link)
	}
	where := "servers in this process, on loopback"
	if !r.InProcess {
		where = "servers in another process"
	}
	runs := ""
	if r.Repeat > 1 {
		runs = fmt.Sprintf(", %d runs each, interleaved: medians, SPREAD is the range of their throughput", r.Repeat)
	}
	fmt.Fprintf(&b, "\n\n%s/%s, %d CPUs, %s; %s; %gs per case after a %gs warm-up%s; load average %s; %s in all.\n"+
		"VS GRPC: items/s (sayHello: calls/s) over gRPC's for the same call and concurrency.\n"+
		"CPU/CALL: %s.\n"+
		"rest: grpc-gateway (protojson); rest-plain: net/http + encoding/json; -proto: protobuf bodies; "+
		"-h2: h2c; -close: a new connection per call.\n"+
		"Codecs: %s.\nLimits: %s.\nBytes and the Service's calls by handler: -o json.\n",
		r.GOOS, r.GOARCH, r.CPUs, r.GoVersion, where, r.Duration, r.Warmup, runs, r.loadText(),
		(time.Duration(r.Elapsed) * time.Second).Round(time.Second), r.CPUNote, r.CodecNote, r.LimitsNote)
	if s := r.Summary(); s != "" {
		fmt.Fprintf(&b, "\n%s\n", s)
	}
	return b.String()
}

func (r *Report) loadText() string {
	switch len(r.LoadAverage) {
	case 0:
		return "unknown"
	case 1:
		return fmt.Sprintf("%.2f at the start", r.LoadAverage[0])
	}
	return fmt.Sprintf("%.2f at the start, %.2f at the end", r.LoadAverage[0], r.LoadAverage[len(r.LoadAverage)-1])
}

// wrap breaks lines longer than width at spaces.
func wrap(s string, width int) string {
	var out strings.Builder
	for i, line := range strings.Split(s, "\n") {
		if i > 0 {
			out.WriteByte('\n')
		}
		col := 0
		for j, word := range strings.Split(line, " ") {
			if j > 0 {
				if col+1+len([]rune(word)) > width {
					out.WriteByte('\n')
					col = 0
				} else {
					out.WriteByte(' ')
					col++
				}
			}
			out.WriteString(word)
			col += len([]rune(word))
		}
	}
	return out.String()
}

// Short formats a count with a k, M or G suffix and three significant digits.
func Short(v float64) string {
	switch {
	case v >= 1e9:
		return trim(v/1e9) + "G"
	case v >= 1e6:
		return trim(v/1e6) + "M"
	case v >= 1e3:
		return trim(v/1e3) + "k"
	default:
		return trim(v)
	}
}

func trim(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
}

func millis(v float64) string {
	if v >= 1 {
		return trim(v) + "ms"
	}
	return trim(v*1000) + "µs"
}

func micros(v float64) string { return millis(v / 1000) }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// TerminalProgress returns a Progress func that writes one line per case to
// w (stderr), with the time the run has left. On a terminal (live) the line
// is rewritten in place as the case runs; otherwise only the finished line
// is written, so that a log stays clean.
func TerminalProgress(w io.Writer, live bool) func(Progress) {
	return func(p Progress) {
		prefix := fmt.Sprintf("[%d/%d %s left] %-32s", p.Index, p.Total, p.Left.Round(time.Second), p.Case.Transport+" "+callName(p.Case)+fmt.Sprintf(" c=%d", p.Case.Concurrency))
		switch {
		case p.Phase == PhaseDone:
			res := p.Result
			line := fmt.Sprintf("%s %s calls/s  p99 %s  %d errors", prefix, Short(res.CallsPerSec), millis(res.Latency.P99), res.Errors)
			if live {
				line = "\r" + line + "\x1b[K"
			}
			fmt.Fprintln(w, line)
		case !live:
		case p.Phase == PhaseWarmup:
			fmt.Fprintf(w, "\r%s warming up\x1b[K", prefix)
		case p.Phase == PhaseMeasure:
			rate := 0.0
			if p.Elapsed > 0 {
				rate = float64(p.Calls) / p.Elapsed.Seconds()
			}
			fmt.Fprintf(w, "\r%s %4.1f/%gs  %s calls  %s/s\x1b[K",
				prefix, p.Elapsed.Seconds(), p.Duration.Seconds(), Short(float64(p.Calls)), Short(rate))
		}
	}
}

// Halves splits gRPC's lead over REST/JSON on HTTP/1.1 keep-alive into its
// transport half (HTTP/2) and its encoding half (protobuf): each figure is
// the geometric mean, over the method, length and concurrency combinations
// that ran on all five, of a transport's throughput over rest's.
type Halves struct {
	Cases    int     `json:"cases"`
	HTTP2    float64 `json:"http2_json"`     // rest-h2 over rest
	Protobuf float64 `json:"http1_protobuf"` // rest-proto over rest
	Both     float64 `json:"http2_protobuf"` // rest-h2-proto over rest
	GRPC     float64 `json:"grpc"`           // grpc over rest
	// Plain is rest-plain over rest, net/http + encoding/json against
	// grpc-gateway, when it ran on every one of the cases; else 0.
	Plain float64 `json:"plain_json,omitempty"`
	// Runs are the same ratios within each repetition, when there were
	// several: their range is the split's spread.
	Runs []Halves `json:"runs,omitempty"`
}

// Halves computes the split; Cases is 0 when no combination ran on all five.
func (r *Report) Halves() Halves {
	h := r.halvesOf(throughput)
	for i := 0; h.Cases > 0 && r.Repeat > 1 && i < r.Repeat; i++ {
		h.Runs = append(h.Runs, r.halvesOf(func(c *Result) float64 {
			if i >= len(c.Runs) {
				return 0
			}
			if c.Method == MethodHello {
				return c.Runs[i].CallsPerSec
			}
			return c.Runs[i].ItemsPerSec
		}))
	}
	return h
}

// halvesOf computes the split on the throughput that of gives a case.
func (r *Report) halvesOf(of func(*Result) float64) Halves {
	find := func(t string, c Case) *Result {
		for i := range r.Cases {
			if k := r.Cases[i].Case; k.Transport == t && sameGroup(k, c) {
				return &r.Cases[i]
			}
		}
		return nil
	}
	var h Halves
	var logs [5]float64
	plain := 0
	for i := range r.Cases {
		base := &r.Cases[i]
		if base.Transport != TransportREST || of(base) == 0 {
			continue
		}
		var ratios [5]float64
		ok := true
		for j, t := range []string{TransportRESTH2, TransportRESTProto, TransportRESTH2Proto, TransportGRPC, TransportRESTPlain} {
			o := find(t, base.Case)
			if o == nil || of(o) == 0 {
				ok = t == TransportRESTPlain // optional: ratios[4] stays 0
				break
			}
			ratios[j] = of(o) / of(base)
		}
		if !ok {
			continue
		}
		h.Cases++
		for j := range 4 {
			logs[j] += math.Log(ratios[j])
		}
		if ratios[4] > 0 {
			plain++
			logs[4] += math.Log(ratios[4])
		}
	}
	if h.Cases == 0 {
		return h
	}
	n := float64(h.Cases)
	h.HTTP2, h.Protobuf, h.Both, h.GRPC = math.Exp(logs[0]/n), math.Exp(logs[1]/n), math.Exp(logs[2]/n), math.Exp(logs[3]/n)
	if plain == h.Cases {
		h.Plain = math.Exp(logs[4] / n)
	}
	return h
}

// span is the range of a ratio over the repetitions, " (runs 1.80–2.01×)",
// or "" with one run.
func (h Halves) span(of func(Halves) float64) string {
	if len(h.Runs) < 2 {
		return ""
	}
	lo, hi := of(h.Runs[0]), of(h.Runs[0])
	for _, r := range h.Runs[1:] {
		lo, hi = min(lo, of(r)), max(hi, of(r))
	}
	return fmt.Sprintf(" (runs %.2f–%.2f×)", lo, hi)
}

// String says the split in plain words.
func (h Halves) String() string {
	if h.Cases == 0 {
		return ""
	}
	over := fmt.Sprintf("over %d unary cases (geometric mean)", h.Cases)
	if h.Cases == 1 {
		over = "on its one unary case"
	}
	s := fmt.Sprintf("Against REST/JSON through grpc-gateway on keep-alive connections, %s: "+
		"protobuf alone gave %s%s its throughput, HTTP/2 alone %s%s, both %s%s, and gRPC %s%s",
		over, times(h.Protobuf), h.span(func(x Halves) float64 { return x.Protobuf }),
		times(h.HTTP2), h.span(func(x Halves) float64 { return x.HTTP2 }),
		times(h.Both), h.span(func(x Halves) float64 { return x.Both }),
		times(h.GRPC), h.span(func(x Halves) float64 { return x.GRPC }))
	if h.Plain > 0 {
		s += fmt.Sprintf("; plain net/http + encoding/json %s%s", times(h.Plain), h.span(func(x Halves) float64 { return x.Plain }))
	}
	return s + "."
}

// times says a ratio in words a reader need not decode.
func times(x float64) string {
	if x < 1 {
		return fmt.Sprintf("%.2f× (less)", x)
	}
	return fmt.Sprintf("%.2f×", x)
}

// Summary says the run's outcome in a sentence or two: gRPC against each
// REST/JSON face on the headline call, getAll(1000) at the highest
// concurrency when it ran, and the split of the lead.
func (r *Report) Summary() string {
	// getAll first, then the longest up to 1000 items, then the most
	// concurrent.
	score := func(c *Result) int64 {
		var s int64
		if c.Method == MethodItems {
			s = 1e12
		}
		if c.Length <= 1000 {
			s += int64(c.Length) * 1e4
		}
		return s + int64(c.Concurrency)
	}
	var head *Result
	for i := range r.Cases {
		c := &r.Cases[i]
		if c.Transport == TransportGRPC && throughput(c) > 0 && (head == nil || score(c) > score(head)) {
			head = c
		}
	}
	if head == nil {
		return ""
	}
	var faces []string
	for _, f := range []struct{ transport, name string }{
		{TransportREST, "REST/JSON through grpc-gateway"},
		{TransportRESTPlain, "plain net/http + encoding/json"},
	} {
		for i := range r.Cases {
			c := &r.Cases[i]
			if c.Transport == f.transport && sameGroup(c.Case, head.Case) && throughput(c) > 0 {
				faces = append(faces, fmt.Sprintf("%s as fast as %s", times(1/r.VsGRPC(c)), f.name))
			}
		}
	}
	if len(faces) == 0 {
		return ""
	}
	s := fmt.Sprintf("Summary: gRPC answered %s at %d concurrent %s, on keep-alive connections.",
		callName(head.Case), head.Concurrency, strings.Join(faces, ", and "))
	if h := r.Halves(); h.Cases > 0 {
		s += " " + h.String()
	}
	return s
}
