package bench

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
)

// transportLabel and transportColor are the legend of the chart.
var (
	transportLabel = map[string]string{
		TransportGRPC:         "gRPC (one HTTP/2 connection)",
		TransportREST:         "REST/JSON, keep-alive",
		TransportRESTPlain:    "REST/JSON, net/http and encoding/json",
		TransportRESTClose:    "REST/JSON, new connection per call",
		TransportRESTH2:       "REST/JSON over one h2c connection",
		TransportRESTProto:    "REST/protobuf, keep-alive",
		TransportRESTH2Proto:  "REST/protobuf over one h2c connection",
		TransportRESTCloseTLS: "REST/JSON, new TLS connection per call",
	}
	transportColor = map[string]string{
		TransportGRPC:         "#2563eb",
		TransportREST:         "#ea580c",
		TransportRESTPlain:    "#ca8a04",
		TransportRESTClose:    "#9ca3af",
		TransportRESTH2:       "#16a34a",
		TransportRESTProto:    "#a855f7",
		TransportRESTH2Proto:  "#0891b2",
		TransportRESTCloseTLS: "#4b5563",
	}
	methodLabel = map[string]string{
		MethodHello:  "sayHello",
		MethodItems:  "getAll (one message)",
		MethodStream: "getStream (one message per item)",
	}
)

// panel is one small chart: a method at a concurrency (getAll, getStream,
// grouped by length), or sayHello grouped by concurrency.
type panel struct {
	title  string
	metric string
	groups []group
}

type group struct {
	label string
	bars  []*Result
}

func (r *Report) panels() []panel {
	var panels []panel
	var transports []string
	for _, t := range Transports {
		if slices.ContainsFunc(r.Cases, func(c Result) bool { return c.Transport == t }) {
			transports = append(transports, t)
		}
	}
	find := func(t, m string, n int32, conc int) *Result {
		for i := range r.Cases {
			c := &r.Cases[i]
			if c.Transport == t && c.Method == m && c.Length == n && c.Concurrency == conc {
				return c
			}
		}
		return nil
	}
	barsOf := func(m string, n int32, conc int) []*Result {
		var bars []*Result
		for _, t := range transports {
			if c := find(t, m, n, conc); c != nil {
				bars = append(bars, c)
			}
		}
		return bars
	}
	hello := panel{title: methodLabel[MethodHello], metric: "calls/s"}
	for _, conc := range r.Concurrency {
		if bars := barsOf(MethodHello, 0, conc); bars != nil {
			hello.groups = append(hello.groups, group{label: fmt.Sprintf("%d concurrent", conc), bars: bars})
		}
	}
	if hello.groups != nil {
		panels = append(panels, hello)
	}
	for _, m := range []string{MethodItems, MethodStream} {
		for _, conc := range r.Concurrency {
			p := panel{title: fmt.Sprintf("%s, %d concurrent", methodLabel[m], conc), metric: "items/s"}
			for _, n := range r.Lengths {
				if bars := barsOf(m, n, conc); bars != nil {
					p.groups = append(p.groups, group{label: "length " + round(int64(n)), bars: bars})
				}
			}
			if p.groups != nil {
				panels = append(panels, p)
			}
		}
	}
	return panels
}

// Chart geometry, in SVG user units (pixels at 100%).
const (
	chartWidth  = 980
	panelWidth  = 480
	panelHeight = 280
	chartTop    = 78
	plotLeft    = 58
	plotRight   = 12
	plotTop     = 34
	plotBottom  = 44
)

// WriteSVG draws the report as grouped bars, gRPC next to REST for each
// length, on a log scale so that sayHello and 100,000-item calls fit one
// chart. It uses presentation attributes only, no style element, so that a
// page with a strict Content-Security-Policy can inline it.
func (r *Report) WriteSVG(w io.Writer) error {
	panels := r.panels()
	rows := (len(panels) + 1) / 2
	height := chartTop + (r.legendRows()-1)*legendRow + rows*panelHeight + 36
	var b bytes.Buffer
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="system-ui, -apple-system, Segoe UI, sans-serif" role="img" aria-labelledby="bench-title">`+"\n",
		chartWidth, height, chartWidth, height)
	fmt.Fprintf(&b, `<title id="bench-title">gRPC vs REST/JSON: throughput per case, higher is better</title>`+"\n")
	fmt.Fprintf(&b, `<rect x="0" y="0" width="%d" height="%d" fill="#ffffff"/>`+"\n", chartWidth, height)
	text(&b, 20, 30, 18, "start", "#111827", "bold", "gRPC vs REST/JSON: throughput, higher is better (log scale)")
	text(&b, 20, 50, 12, "start", "#4b5563", "", fmt.Sprintf("%s/%s, %d CPUs, %s, %gs per case after %gs warm-up; servers %s",
		r.GOOS, r.GOARCH, r.CPUs, r.GoVersion, r.Duration, r.Warmup, map[bool]string{true: "in-process on loopback", false: "in another process"}[r.InProcess]))
	legendRows := legend(&b, r)
	top := chartTop + (legendRows-1)*legendRow
	for i, p := range panels {
		px := 10 + float64(i%2)*panelWidth
		py := float64(top + (i/2)*panelHeight)
		drawPanel(&b, p, px, py)
	}
	text(&b, 20, float64(height-14), 11, "start", "#6b7280", "",
		"Bars: items/s for getAll and getStream, calls/s for sayHello. Each bar's exact figures are in its tooltip and in the table.")
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// legendRow is the height of one row of the legend.
const legendRow = 18

// legendEntries lays out the legend of the transports in the report: each
// entry's x and row.
func (r *Report) legendEntries() (transports []string, xs []float64, rows []int) {
	x, row := 20.0, 0
	for _, t := range Transports {
		if !slices.ContainsFunc(r.Cases, func(c Result) bool { return c.Transport == t }) {
			continue
		}
		w := 17 + 7*float64(len(transportLabel[t])) + 24
		if x+w > chartWidth-10 && x > 20 {
			x, row = 20, row+1
		}
		transports, xs, rows = append(transports, t), append(xs, x), append(rows, row)
		x += w
	}
	return transports, xs, rows
}

func (r *Report) legendRows() int {
	_, _, rows := r.legendEntries()
	if len(rows) == 0 {
		return 1
	}
	return rows[len(rows)-1] + 1
}

// legend draws the legend and returns how many rows it took.
func legend(b *bytes.Buffer, r *Report) int {
	transports, xs, rows := r.legendEntries()
	for i, t := range transports {
		y := 60 + float64(rows[i]*legendRow)
		fmt.Fprintf(b, `<rect x="%.0f" y="%.0f" width="12" height="12" fill="%s"/>`+"\n", xs[i], y, transportColor[t])
		text(b, xs[i]+17, y+10.5, 12, "start", "#111827", "", transportLabel[t])
	}
	return r.legendRows()
}

func drawPanel(b *bytes.Buffer, p panel, px, py float64) {
	left, top := px+plotLeft, py+plotTop
	width := panelWidth - plotLeft - plotRight - 10.0
	height := panelHeight - plotTop - plotBottom - 0.0
	bottom := top + height
	text(b, px+plotLeft, py+20, 13, "start", "#111827", "bold", p.title)

	lo, hi := p.scale()
	y := func(v float64) float64 {
		if v <= lo {
			return bottom
		}
		return bottom - (math.Log10(v)-math.Log10(lo))/(math.Log10(hi)-math.Log10(lo))*height
	}
	for v := lo; v <= hi*1.001; v *= 10 {
		fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#e5e7eb" stroke-width="1"/>`+"\n", left, y(v), left+width, y(v))
		text(b, left-6, y(v)+4, 10, "end", "#6b7280", "", round(int64(math.Round(v))))
	}
	fmt.Fprintf(b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#9ca3af" stroke-width="1"/>`+"\n", left, bottom, left+width, bottom)
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="10" fill="#6b7280" text-anchor="middle" transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n",
		px+14, top+height/2, px+14, top+height/2, esc(p.metric))

	groupWidth := width / float64(len(p.groups))
	for gi, g := range p.groups {
		gx := left + float64(gi)*groupWidth
		barWidth := min(40, groupWidth*0.8/float64(len(g.bars)))
		start := gx + (groupWidth-barWidth*float64(len(g.bars)))/2
		for bi, c := range g.bars {
			v := throughput(c)
			bx := start + float64(bi)*barWidth
			by := y(v)
			label := Short(v)
			switch {
			case v == 0 && c.Errors > 0:
				label = "failed"
			case v == 0:
				label = "none"
			}
			tip := fmt.Sprintf("%s: %s calls/s, %s items/s, p99 %s, %s body bytes/call, %d errors",
				c.Name, Short(c.CallsPerSec), Short(c.ItemsPerSec), millis(c.Latency.P99), Short(float64(c.BodyBytes)), c.Errors)
			fmt.Fprintf(b, `<rect class="bar" data-case="%s" x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="%s"><title>%s</title></rect>`+"\n",
				esc(c.Name), bx+1, by, barWidth-2, bottom-by, transportColor[c.Transport], esc(tip))
			text(b, bx+barWidth/2, by-3, 9, "middle", "#374151", "", label)
		}
		text(b, gx+groupWidth/2, bottom+16, 11, "middle", "#111827", "", g.label)
	}
}

// scale returns the powers of ten below and above the panel's bars.
func (p panel) scale() (lo, hi float64) {
	lo, hi = math.Inf(1), 0.0
	for _, g := range p.groups {
		for _, c := range g.bars {
			if v := throughput(c); v > 0 {
				lo, hi = min(lo, v), max(hi, v)
			}
		}
	}
	if hi == 0 {
		lo, hi = 1, 10
	}
	lo = math.Pow(10, math.Floor(math.Log10(lo)))
	hi = math.Pow(10, math.Ceil(math.Log10(hi)))
	if hi <= lo {
		hi = lo * 10
	}
	return lo, hi
}

// round formats a whole number such as a length or a power of ten: 100k,
// 1M, 1234.
func round(n int64) string {
	switch {
	case n >= 1e9 && n%1e9 == 0:
		return strconv.FormatInt(n/1e9, 10) + "G"
	case n >= 1e6 && n%1e6 == 0:
		return strconv.FormatInt(n/1e6, 10) + "M"
	case n >= 1e3 && n%1e3 == 0:
		return strconv.FormatInt(n/1e3, 10) + "k"
	}
	return strconv.FormatInt(n, 10)
}

func text(b *bytes.Buffer, x, y float64, size int, anchor, fill, weight, s string) {
	fmt.Fprintf(b, `<text x="%.1f" y="%.1f" font-size="%d" fill="%s" text-anchor="%s"`, x, y, size, fill, anchor)
	if weight != "" {
		fmt.Fprintf(b, ` font-weight="%s"`, weight)
	}
	b.WriteString(">" + esc(s) + "</text>\n")
}

func esc(s string) string {
	var b bytes.Buffer
	_ = xml.EscapeText(&b, []byte(s))
	return b.String()
}

// SVG returns WriteSVG's chart as a string.
func (r *Report) SVG() string {
	var b bytes.Buffer
	_ = r.WriteSVG(&b)
	return b.String()
}
