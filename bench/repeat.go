package bench

import (
	"maps"
	"slices"
)

// interleaved is the order of the cases in repetition rep: the transports
// of one method, length and concurrency side by side, as listed on even
// repetitions and reversed on odd ones, so that no transport always runs
// first, just after another method, or last.
func interleaved(cases []Case, rep int) []Case {
	if rep%2 == 0 {
		return cases
	}
	out := make([]Case, 0, len(cases))
	for i := 0; i < len(cases); {
		j := i
		for j < len(cases) && sameGroup(cases[i], cases[j]) {
			j++
		}
		group := slices.Clone(cases[i:j])
		slices.Reverse(group)
		out = append(out, group...)
		i = j
	}
	return out
}

func sameGroup(a, b Case) bool {
	return a.Method == b.Method && a.Length == b.Length && a.Concurrency == b.Concurrency
}

// Repetition is one repetition's figures of a case.
type Repetition struct {
	CallsPerSec      float64  `json:"calls_per_sec"`
	ItemsPerSec      float64  `json:"items_per_sec"`
	P99              float64  `json:"p99_ms"`
	CPUPerCall       float64  `json:"cpu_us_per_call"`
	ServerCPUPerCall *float64 `json:"server_cpu_us_per_call,omitempty"`
}

// aggregate merges a case's repetitions: the median of each figure, the
// sums of the counts, each run's figures, and the spread of throughput.
func aggregate(runs []Result) Result {
	if len(runs) == 1 {
		return runs[0]
	}
	res := runs[0]
	res.Calls, res.Errors, res.Seconds, res.Answered = 0, 0, 0, 0
	res.Handlers = nil
	var calls, items, p50, p90, p99, maxLat, wire, cpu, srv, tput []float64
	for _, r := range runs {
		res.Calls += r.Calls
		res.Errors += r.Errors
		res.Seconds += r.Seconds
		res.Answered += r.Answered
		if res.FirstError == "" {
			res.FirstError = r.FirstError
		}
		if r.Handlers != nil {
			if res.Handlers == nil {
				res.Handlers = map[string]int64{}
			}
			for k, v := range maps.All(r.Handlers) {
				res.Handlers[k] += v
			}
		}
		calls, items = append(calls, r.CallsPerSec), append(items, r.ItemsPerSec)
		p50, p90, p99, maxLat = append(p50, r.Latency.P50), append(p90, r.Latency.P90), append(p99, r.Latency.P99), append(maxLat, r.Latency.Max)
		wire, cpu = append(wire, r.WireBytes), append(cpu, r.CPUPerCall)
		if r.ServerCPUPerCall != nil {
			srv = append(srv, *r.ServerCPUPerCall)
		}
		tput = append(tput, throughput(&r))
		res.Runs = append(res.Runs, Repetition{CallsPerSec: r.CallsPerSec, ItemsPerSec: r.ItemsPerSec, P99: r.Latency.P99, CPUPerCall: r.CPUPerCall, ServerCPUPerCall: r.ServerCPUPerCall})
	}
	res.CallsPerSec, res.ItemsPerSec = median(calls), median(items)
	res.Latency = Latency{P50: median(p50), P90: median(p90), P99: median(p99), Max: slices.Max(maxLat)}
	res.WireBytes, res.CPUPerCall = median(wire), median(cpu)
	res.ServerCPUPerCall = nil
	if len(srv) == len(runs) {
		v := median(srv)
		res.ServerCPUPerCall = &v
	}
	if m := median(tput); m > 0 {
		res.Spread = (slices.Max(tput) - slices.Min(tput)) / m
	}
	return res
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
