package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
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
	BytesNote string   `json:"bytes_note"`
	Cases     []Result `json:"cases"`
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
var TableHeader = []string{"CASE", "LEN", "C", "CALLS/S", "ITEMS/S", "VS GRPC", "P50", "P90", "P99", "BODY B", "WIRE B", "CPU/CALL", "SRV CPU", "ERRORS"}

// Rows formats every case as the cells of a table, under TableHeader.
func (r *Report) Rows() [][]string {
	rows := make([][]string, 0, len(r.Cases))
	for i := range r.Cases {
		c := &r.Cases[i]
		length, items := "-", "-"
		if c.Method != MethodHello {
			length = strconv.Itoa(int(c.Length))
			items = Short(c.ItemsPerSec)
		}
		vs := "-"
		if v := r.VsGRPC(c); v > 0 {
			vs = fmt.Sprintf("%.2fx", v)
		}
		srv := "-"
		if c.ServerCPUPerCall != nil {
			srv = micros(*c.ServerCPUPerCall)
		}
		errs := strconv.FormatInt(c.Errors, 10)
		if c.FirstError != "" && (c.Errors > 0 || c.Calls == 0) {
			errs += " (" + truncate(c.FirstError, 60) + ")"
		}
		p50, p90, p99, wire, cpu := "-", "-", "-", "-", "-"
		if c.Calls > 0 {
			p50, p90, p99 = millis(c.Latency.P50), millis(c.Latency.P90), millis(c.Latency.P99)
			wire, cpu = bytesShort(c.WireBytes), micros(c.CPUPerCall)
		}
		rows = append(rows, []string{
			c.Transport + "/" + c.Method, length, strconv.Itoa(c.Concurrency),
			Short(c.CallsPerSec), items, vs,
			p50, p90, p99,
			bytesShort(float64(c.BodyBytes)), wire,
			cpu, srv, errs,
		})
	}
	return rows
}

// WriteTable writes the report as an aligned text table with notes.
func (r *Report) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, strings.Join(TableHeader, "\t")+"\t")
	for _, row := range r.Rows() {
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	where := "servers in this process, on loopback"
	if !r.InProcess {
		where = "servers in another process"
	}
	if r.Link != nil {
		if _, err := fmt.Fprintf(w, "\n%s.\n", r.Link); err != nil {
			return err
		}
	}
	if h := r.Halves(); h.Cases > 0 {
		if _, err := fmt.Fprintf(w, "\n%s\n", h); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintf(w, "\n%s/%s, %d CPUs, %s; %s; %gs per case after a %gs warm-up.\n"+
		"VS GRPC: items/s (sayHello: calls/s) over gRPC's for the same method, length and concurrency.\n"+
		"BODY B: response payload per call (protobuf with gRPC's 5-byte prefix per message, or JSON). "+
		"WIRE B: bytes the client read from its sockets per call, HTTP headers and framing included.\n"+
		"CPU/CALL: %s.\n",
		r.GOOS, r.GOARCH, r.CPUs, r.GoVersion, where, r.Duration, r.Warmup, r.CPUNote)
	return err
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

// bytesShort is Short for byte counts, which need no decimals below 1k.
func bytesShort(v float64) string {
	if v < 1000 {
		return strconv.FormatFloat(v, 'f', 0, 64)
	}
	return Short(v)
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
// w (stderr). On a terminal (live) the line is rewritten in place as the case
// runs; otherwise only the finished line is written, so that a log stays clean.
func TerminalProgress(w io.Writer, live bool) func(Progress) {
	return func(p Progress) {
		prefix := fmt.Sprintf("[%d/%d] %-34s", p.Index, p.Total, p.Case.String())
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
			fmt.Fprintf(w, "\r%s %4.1f/%gs  %s calls  %s/s  %d errors\x1b[K",
				prefix, p.Elapsed.Seconds(), p.Duration.Seconds(), Short(float64(p.Calls)), Short(rate), p.Errors)
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
}

// Halves computes the split; Cases is 0 when no combination ran on all five.
func (r *Report) Halves() Halves {
	find := func(t string, c Case) *Result {
		for i := range r.Cases {
			if k := r.Cases[i].Case; k.Transport == t && k.Method == c.Method && k.Length == c.Length && k.Concurrency == c.Concurrency {
				return &r.Cases[i]
			}
		}
		return nil
	}
	var h Halves
	var logs [4]float64
	for i := range r.Cases {
		base := &r.Cases[i]
		if base.Transport != TransportREST || throughput(base) == 0 {
			continue
		}
		var ratios [4]float64
		ok := true
		for j, t := range []string{TransportRESTH2, TransportRESTProto, TransportRESTH2Proto, TransportGRPC} {
			o := find(t, base.Case)
			if o == nil || throughput(o) == 0 {
				ok = false
				break
			}
			ratios[j] = throughput(o) / throughput(base)
		}
		if !ok {
			continue
		}
		h.Cases++
		for j := range logs {
			logs[j] += math.Log(ratios[j])
		}
	}
	if h.Cases == 0 {
		return h
	}
	n := float64(h.Cases)
	h.HTTP2, h.Protobuf, h.Both, h.GRPC = math.Exp(logs[0]/n), math.Exp(logs[1]/n), math.Exp(logs[2]/n), math.Exp(logs[3]/n)
	return h
}

// String says the split in one sentence.
func (h Halves) String() string {
	if h.Cases == 0 {
		return ""
	}
	share := func(x float64) string {
		if h.GRPC <= 1 {
			return "-"
		}
		return fmt.Sprintf("%.0f%%", 100*math.Log(x)/math.Log(h.GRPC))
	}
	return fmt.Sprintf("Over REST/JSON on HTTP/1.1 keep-alive (geometric mean of %d unary cases' throughput): HTTP/2 alone %.2fx (%s of gRPC's lead), "+
		"protobuf alone %.2fx (%s), both %.2fx (%s), gRPC %.2fx.", h.Cases, h.HTTP2, share(h.HTTP2), h.Protobuf, share(h.Protobuf), h.Both, share(h.Both), h.GRPC)
}
