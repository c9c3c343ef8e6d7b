// Package telemetrytest reads what grpcplay's servers expose, for tests:
// /metrics as Prometheus parses it, and JSON log lines.
package telemetrytest

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Metrics is one scrape, by metric family name.
type Metrics map[string]*dto.MetricFamily

// Scrape GETs url, as Prometheus would, and parses the text format.
func Scrape(tb testing.TB, url string) Metrics {
	tb.Helper()
	resp, err := http.Get(url)
	if err != nil {
		tb.Fatalf("scrape %s: %v", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(resp.Body)
		tb.Fatalf("scrape %s: %s\n%s", url, resp.Status, body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		tb.Fatalf("scrape %s: Content-Type %q, want the text format", url, ct)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		tb.Fatalf("scrape %s: %v", url, err)
	}
	return families
}

// Value is the value of the counter, gauge or untyped sample of family name
// whose labels include labels, or of the histogram's count; the sum of them
// when several match, 0 when none does.
func (m Metrics) Value(name string, labels map[string]string) float64 {
	f := m[name]
	var sum float64
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch f.GetType() {
		case dto.MetricType_COUNTER:
			sum += s.GetCounter().GetValue()
		case dto.MetricType_GAUGE:
			sum += s.GetGauge().GetValue()
		case dto.MetricType_HISTOGRAM:
			sum += float64(s.GetHistogram().GetSampleCount())
		default:
			sum += s.GetUntyped().GetValue()
		}
	}
	return sum
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	found := 0
	for _, l := range s.GetLabel() {
		if v, ok := want[l.GetName()]; ok {
			if v != l.GetValue() {
				return false
			}
			found++
		}
	}
	return found == len(want)
}

// LogBuffer collects what servers' goroutines write (log lines, a
// command's output) so that a test may read it while they still write.
type LogBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LogBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String is everything written so far.
func (b *LogBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Lines parses every line as JSON, failing the test on one that is not.
func (b *LogBuffer) Lines(tb testing.TB) []map[string]any {
	tb.Helper()
	b.mu.Lock()
	text := b.buf.String()
	b.mu.Unlock()
	var lines []map[string]any
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		var line map[string]any
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			tb.Fatalf("log line is not JSON: %v\n%s", err, sc.Text())
		}
		lines = append(lines, line)
	}
	return lines
}

// Matching returns the lines whose fields include fields.
func Matching(lines []map[string]any, fields map[string]any) []map[string]any {
	var out []map[string]any
next:
	for _, l := range lines {
		for k, v := range fields {
			if l[k] != v {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}
