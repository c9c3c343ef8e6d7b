package reliability_test

import (
	"bytes"
	wire "encoding/binary"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2/hpack"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// The attacks of a client that means harm on the gRPC port, each against a
// real `grpcplay serve` with the canary probing all faces meanwhile. The
// bounds asserted are those docs/RELIABILITY.md computes.

// Per-stream bounds measured on grpcplay's defaults (docs/RELIABILITY.md,
// "The worst case the limits allow"): a stalled getStream keeps grpc-go's
// 64 KiB write quota of small items queued, about 850 KB; a call whose 64 KiB
// request never finishes, with 8 KiB of headers, about 90 KB; a stream
// whose headers are a bomb, at most its 8 KiB limit.
const (
	stalledStreamBytes = 1 << 20   // the bound tested, with room for noise
	heldRequestBytes   = 192 << 10 // the same
	headerStreamBytes  = 64 << 10
	baseSlack          = 40 << 20 // the runtime's own growth while it works
)

// The stream budgets of `grpcplay serve`'s defaults (backend.DefaultConfig).
const (
	streamsPerConn    = 128 // as many as MaxConcurrentStreams allows
	streamsPerProcess = 256
	streamsPerHTTP2   = 128 // MaxConcurrentStreams
)

// started is how many calls of method the backend has started, from its
// /metrics.
func (p *serveProc) started(t *testing.T, method string) int {
	t.Helper()
	body := scrapeMetrics(t, p.metrics)
	re := regexp.MustCompile(`grpc_server_started_total\{[^}]*grpc_method="` + method + `"[^}]*\} (\d+)`)
	total := 0
	for _, m := range re.FindAllStringSubmatch(string(body), -1) {
		n, _ := strconv.Atoi(m[1])
		total += n
	}
	return total
}

// settledRSS waits until the resident set stops growing (three reads in a
// row within 1 MB, 100 ms apart: the server has queued all it will) and
// returns it.
func (p *serveProc) settledRSS(t *testing.T) int64 {
	t.Helper()
	prev := p.status(t, "VmRSS")
	// Settled is no growth of a MiB or more for 150 ms.
	grew := time.Now()
	testkit.Eventually(t, 20*time.Second, func() error {
		cur := p.status(t, "VmRSS")
		if cur-prev >= 1<<20 {
			grew = time.Now()
		}
		prev = cur
		return testkit.Failf(time.Since(grew) >= 150*time.Millisecond, "resident set still growing: %d bytes", cur)
	})
	return prev
}

// TestHostileWorstCase makes the calls that hold most hold all that the
// limits let them, each with headers just under the 8 KiB limit: getStreams
// whose reply stalls (no WINDOW_UPDATE, so the server may send 64 KiB a
// connection and must queue the rest) up to the process's stream budget, on
// as few connections as the per-connection budget allows, and on every other
// stream the connections allow a sayHello whose request declares the
// largest size, 64 KiB, and never ends. One getStream over each budget must
// be refused with ResourceExhausted. It measures what each kind holds, from
// which docs/RELIABILITY.md computes the worst case at the 64 connections
// allowed.
func TestHostileWorstCase(t *testing.T) {
	p := startServe(t)
	c := startCanary(t, p)
	c.waitAfter(t, time.Now(), 2)
	base := p.status(t, "VmHWM")
	rssBase := p.settledRSS(t)
	cpuBefore := p.cpu(t)

	stalled := stallStreams(t, p)
	rssStalled := p.settledRSS(t)
	settled, burst := time.Now(), p.cpu(t)-cpuBefore
	held := refuseOverBudget(t, p)
	conns := append(stalled, held...)
	nHeld := holdRequests(t, conns, len(stalled))
	rss := p.settledRSS(t)
	peak := p.status(t, "VmHWM")

	perStalled := (rssStalled - rssBase) / streamsPerProcess
	perHeld := max(rss-rssStalled, 0) / int64(nHeld)
	worst := streamsPerProcess*perStalled + (64*streamsPerHTTP2-streamsPerProcess)*perHeld
	t.Logf("%d stalled getStreams: %d KB each, filled in %v of CPU; %d held requests: %d KB each; peak RSS %d MB (from %d MB); at 64 connections: %d MB",
		streamsPerProcess, perStalled>>10, burst, nHeld, perHeld>>10, peak>>20, base>>20, worst>>20)
	if limit := base + streamsPerProcess*stalledStreamBytes + int64(nHeld)*heldRequestBytes + baseSlack; peak > limit {
		t.Errorf("peak RSS %d MB over the bound %d MB", peak>>20, limit>>20)
	}

	// While the stalled streams hold the process's budget, the page's own
	// getStream is refused too: that is the budget's price. Every other face
	// serves from when the streams have queued all they may (while they fill
	// their write quotas, the CPU is theirs, as it would be for streams that
	// are read), and the page is back once the attacker goes.
	for _, rc := range conns {
		_ = rc.conn.Close()
	}
	back := time.Now().Add(2 * time.Second)
	c.waitAfter(t, back, 3)
	c.halt()
	all, _ := c.failuresAfter(time.Time{})
	failed, total := c.failuresAfter(settled)
	for _, r := range failed {
		if !strings.HasPrefix(r.probe, "page/") || !r.start.Before(back) {
			t.Errorf("canary: %s failed once the streams had queued all they may: %v", r.probe, r.err)
		}
	}
	t.Logf("canary: %d probes from then; %d failed in all: the page's while the budget was held, any while the streams filled", total, len(all))
}

// stallStreams opens the process's budget of stalled getStreams, the
// connection's budget on each connection, and waits until all have started.
func stallStreams(t *testing.T, p *serveProc) []*rawConn {
	t.Helper()
	before := p.started(t, "getStream")
	var stalled []*rawConn
	for left := streamsPerProcess; left > 0; left -= streamsPerConn {
		rc := dialRaw(t, p.grpc)
		stalled = append(stalled, rc)
		for range min(left, streamsPerConn) {
			if !holdStream(rc) {
				t.Fatal("the server closed the connection of a client within every limit")
			}
		}
	}
	testkit.Eventually(t, 20*time.Second, func() error {
		return testkit.Failf(p.started(t, "getStream")-before >= streamsPerProcess, "not every stream started")
	})
	return stalled
}

// refuseOverBudget opens one getStream over the process's budget, on a new
// connection: it must be refused with ResourceExhausted. (A connection's own
// budget is as large as the streams it may open: backend's tests refuse
// calls over it.) It returns that connection and others to hold requests.
func refuseOverBudget(t *testing.T, p *serveProc) []*rawConn {
	t.Helper()
	const heldConns = 5
	var held []*rawConn
	for range heldConns {
		held = append(held, dialRaw(t, p.grpc))
	}
	id := holdStreamID(held[0])
	select {
	case tr := <-held[0].trailers:
		if tr.stream != id || tr.status != "8" {
			t.Errorf("stream %d ended with grpc-status %q; want stream %d refused with 8 (ResourceExhausted)", tr.stream, tr.status, id)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("the getStream over the budget was not refused within 20s")
	}
	return held
}

// holdRequests holds a request on every other stream conns allow, the first
// nStalled of which hold the stalled streams, and returns how many.
func holdRequests(t *testing.T, conns []*rawConn, nStalled int) int {
	t.Helper()
	n := 0
	for i, rc := range conns {
		free := streamsPerHTTP2
		if i < nStalled {
			free -= min(streamsPerProcess-i*streamsPerConn, streamsPerConn)
		}
		for range free {
			if !holdRequest(rc) {
				t.Fatal("the server closed the connection of a client within every limit")
			}
			n++
		}
	}
	return n
}

// cpu is the CPU time the process has used.
func (p *serveProc) cpu(t *testing.T) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		t.Fatalf("stat of serve: %v", err)
	}
	// utime and stime, in clock ticks, are fields 14 and 15; the command's
	// name, field 2, ends at the last ')'.
	fields := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / clockTicks
}

// clockTicks is USER_HZ, 100 on every Linux architecture Go runs on.
const clockTicks = 100

// bigHeaders are a call's headers with a 7 KiB token: just under the 8 KiB
// header-list limit.
func bigHeaders(method string) []hpack.HeaderField {
	return append(grpcHeaders(method),
		hpack.HeaderField{Name: "authorization", Value: "Bearer " + strings.Repeat("x", 7<<10)})
}

// holdStream opens a getStream(10,000,000) that it never reads: see
// TestHostileWorstCase.
func holdStream(rc *rawConn) bool { return holdStreamID(rc) != 0 }

func holdStreamID(rc *rawConn) uint32 {
	id := rc.open(bigHeaders(api.Api_GetStream_FullMethodName), false)
	if id == 0 || !rc.request(id, getStreamRequest(10_000_000)) {
		return 0
	}
	return id
}

// holdRequest opens a sayHello whose request declares 64 KiB, the server's
// limit, then sends all but its last KiB, in frames of the default 16 KiB
// size.
func holdRequest(rc *rawConn) bool {
	id := rc.open(bigHeaders(api.Api_SayHello_FullMethodName), false)
	if id == 0 {
		return false
	}
	const size = 64 << 10
	prefix := []byte{0, 0, 0, 0, 0}
	wire.BigEndian.PutUint32(prefix[1:], size)
	ok := rc.write(func() error { return rc.fr.WriteData(id, false, prefix) })
	chunk := make([]byte, 15<<10)
	for sent := 0; ok && sent+len(chunk) < size; sent += len(chunk) {
		ok = rc.write(func() error { return rc.fr.WriteData(id, false, chunk) })
	}
	return ok
}

// bombHeaders are a call's headers plus one 4,000-byte binary header
// repeated: HPACK sends the repeats as an index of a byte or two each, so
// the whole block is a few KB on the wire and MBs decoded.
func bombHeaders(method string, repeats int) []hpack.HeaderField {
	fields := grpcHeaders(method)
	bomb := hpack.HeaderField{Name: "x-bomb-bin", Value: strings.Repeat("A", 4000)}
	for range repeats {
		fields = append(fields, bomb)
	}
	return fields
}

// TestHostileMetadataBomb sends, on many connections and streams, header
// blocks of about 2 KB that decode to 4 MB each. The server must refuse each
// at its 8 KiB header-list limit, holding no more than the limit a stream.
func TestHostileMetadataBomb(t *testing.T) {
	const conns, streams, repeats = 8, 128, 1000
	p := startServe(t)
	c := startCanary(t, p)
	c.waitAfter(t, time.Now(), 2)
	base := p.status(t, "VmHWM")
	sent, how := 0, map[string]int{}
	for range conns {
		rc := dialRaw(t, p.grpc)
		answered := 0
		for range streams {
			if rc.open(bombHeaders(api.Api_GetStream_FullMethodName, repeats), false) == 0 {
				break
			}
			sent++
		}
		// Each stream is answered (reset, or trailers with an error) or the
		// whole connection is closed: nothing is left waiting.
		deadline := time.After(20 * time.Second)
		for answered < streams {
			select {
			case <-rc.resets:
				how["reset"]++
			case tr := <-rc.trailers:
				how["grpc-status "+tr.status]++
			case <-rc.closed:
				how["connection closed"]++
				answered = streams
				continue
			case <-deadline:
				t.Fatalf("%d of %d bomb streams answered within 20s", answered, streams)
			}
			answered++
		}
	}
	c.waitAfter(t, time.Now(), 3)
	peak := p.status(t, "VmHWM")
	t.Logf("%d bomb streams of %d MB decoded each, answered %v: peak RSS %d MB (from %d MB)", sent, repeats*4042>>20, how, peak>>20, base>>20)
	if limit := base + conns*streams*headerStreamBytes + baseSlack; peak > limit {
		t.Errorf("peak RSS %d MB over the bound %d MB", peak>>20, limit>>20)
	}
	c.assertAllSucceeded(t)
}

// TestHostileRapidReset opens streams and resets them at once, in a loop,
// on several connections (CVE-2023-44487): HEADERS and RST_STREAM, and
// HEADERS, the request and RST_STREAM, so that calls reach their handler. Each connection must be closed long
// before the attack's time is up; the log must not grow by a line a call;
// and the canary must be back within a second of the attack's end.
func TestHostileRapidReset(t *testing.T) {
	t.Run("headers", func(t *testing.T) { testRapidReset(t, false) })
	t.Run("with request", func(t *testing.T) { testRapidReset(t, true) })
}

func testRapidReset(t *testing.T, withRequest bool) {
	const conns = 8
	const attackFor = 5 * time.Second
	// At info, to see that cancelled calls are not logged there.
	p := startServe(t, "--log-level", "info")
	c := startCanary(t, p)
	c.waitAfter(t, time.Now(), 2)
	logBefore := len(p.stderr.String())
	base := p.status(t, "VmHWM")
	start := time.Now()
	results := make(chan int, conns)
	for range conns {
		rc := dialRaw(t, p.grpc)
		go func() { results <- rapidReset(rc, withRequest, time.Now().Add(attackFor)) }()
	}
	total := 0
	for range conns {
		n := <-results
		if n < 0 {
			t.Errorf("a connection was still open after %v of resets", attackFor)
			continue
		}
		total += n
	}
	end := time.Now()
	t.Logf("%d connections closed after %d resets in %v", conns, total, end.Sub(start).Round(time.Millisecond))
	peak := p.status(t, "VmHWM")
	t.Logf("peak RSS %d MB (from %d MB)", peak>>20, base>>20)
	if limit := base + baseSlack; peak > limit {
		t.Errorf("peak RSS %d MB over the bound %d MB", peak>>20, limit>>20)
	}
	c.assertRecovered(t, end, time.Second)
	// The canary's own calls log at info; the attack's must not.
	logged := p.stderr.String()[logBefore:]
	if n := strings.Count(logged, "code=Canceled"); n > 0 {
		t.Errorf("%d log lines of cancelled calls at info level", n)
	}
	if n := strings.Count(logged, "resets streams faster"); n > conns {
		t.Errorf("%d lines for %d closed connections", n, conns)
	}
}

// rapidReset opens sayHello calls (with their request, if asked) and resets
// each at once until the server
// closes the connection or until stop. It returns the streams it reset, or
// -1 if the connection outlived stop.
func rapidReset(rc *rawConn, withRequest bool, stop time.Time) int {
	hello := []byte{0x0a, 0x01, 'x'} // HelloRequest{Name: "x"}
	n := 0
	for time.Now().Before(stop) {
		select {
		case <-rc.closed:
			return n
		default:
		}
		id := rc.open(grpcHeaders(api.Api_SayHello_FullMethodName), false)
		if id == 0 || (withRequest && !rc.request(id, hello)) || !rc.reset(id) {
			<-rc.closed
			return n
		}
		n++
	}
	return -1
}
