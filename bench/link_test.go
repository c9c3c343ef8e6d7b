package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// listen listens on a free loopback port, closed when the test ends.
func listen(t *testing.T) net.Listener {
	t.Helper()
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lis.Close() })
	return lis
}

// echoThroughProxy serves an echo on loopback behind a delay proxy of
// oneWay each way, stopped when the test ends, and returns the proxy.
func echoThroughProxy(t *testing.T, oneWay time.Duration) *delayProxy {
	echo := listen(t)
	go func() {
		for {
			c, err := echo.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	p := newDelayProxy(listen(t), echo.Addr().String(), nil, 0)
	p.setOneWay(oneWay)
	served := make(chan error, 1)
	go func() { served <- p.serve() }()
	t.Cleanup(func() {
		if err := p.close(); err != nil {
			t.Error(err)
		}
		if err := <-served; err != nil {
			t.Error(err)
		}
	})
	return p
}

func TestDelayProxyDelaysEachWayAndKeepsOrder(t *testing.T) {
	const oneWay = 5 * time.Millisecond
	p := echoThroughProxy(t, oneWay)
	conn, err := net.Dial("tcp", p.lis.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// A round trip crosses the delay twice.
	var best time.Duration
	for i := range 5 {
		start := time.Now()
		if _, err := conn.Write([]byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		var b [1]byte
		if _, err := io.ReadFull(conn, b[:]); err != nil || b[0] != byte(i) {
			t.Fatalf("echo %d: %v %v", i, b, err)
		}
		if d := time.Since(start); best == 0 || d < best {
			best = d
		}
	}
	// No round trip is shorter than the delay both ways, and the proxy
	// never waits longer than the delay on any crossing: a busy machine
	// makes calls slower, never the waits longer.
	if waited := time.Duration(p.waited.Load()); best < 2*oneWay || waited > 5*2*oneWay {
		t.Errorf("round trip %v, %v waited over 5 round trips, through a proxy of %v each way", best, waited, oneWay)
	}

	// Many chunks in flight at once come back whole and in order, in
	// about one round trip more than it takes to send them, not one each.
	want := make([]byte, 4<<20)
	for i := range want {
		want[i] = byte(i * 7 / 5)
	}
	// A longer delay for the transfer, so that the chunks arrive well
	// within it of each other even on a busy machine.
	const bulkOneWay = 50 * time.Millisecond
	p.setOneWay(bulkOneWay)
	before := p.waited.Load()
	go conn.Write(want)
	got := make([]byte, len(want))
	if _, err := io.ReadFull(conn, got); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("the bytes came back changed or out of order")
	}
	// Paid per chunk, the delay would add up to 16 chunks' worth each
	// way; paid once, to about one each way, and a chunk waits at most
	// the time since the one before it arrived.
	if waited := time.Duration(p.waited.Load() - before); waited > 16*bulkOneWay {
		t.Errorf("4 MB waited %v in the proxy: the delay is paid per chunk, not once", waited)
	}
}

func needRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("network namespaces and qdiscs need root")
	}
}

// children lists this process's child processes.
func children(t *testing.T) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	me := strconv.Itoa(os.Getpid())
	for _, e := range entries {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		s := string(stat)
		fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
		if len(fields) > 1 && fields[1] == me {
			pid, _ := strconv.Atoi(e.Name())
			pids = append(pids, pid)
		}
	}
	return pids
}

// checkNothingLeft fails when a namespace or child process of this test
// process remains.
func checkNothingLeft(t *testing.T) {
	t.Helper()
	if n := newNetnsPair(os.Getpid()); n.exists() {
		t.Errorf("namespace %s or %s left behind", n.client, n.server)
	}
	if pids := children(t); len(pids) > 0 {
		t.Errorf("child processes left behind: %v", pids)
	}
}

func TestLinkDelaysAndShapesWithinTolerance(t *testing.T) {
	needRoot(t)
	// A profile of its own, slow enough that a client built with -race on
	// a busy core can read at its rate: it is the link that is measured.
	link := Link{Name: "test", RTT: 2 * time.Millisecond, Rate: 200e6}
	a, err := startApart(t.Context(), link)
	if err != nil {
		t.Fatal(err)
	}
	if !a.report.Shaped || a.ns == nil || a.proxy == nil {
		t.Fatalf("link not shaped: %+v", a.report)
	}
	// Measured again, on a new connection and without any correction: a
	// round trip and a transfer through the link as the bench set it up.
	var d net.Dialer
	rtt, bw, err := measureLink(t.Context(), d.DialContext, a.probe, link, nil)
	if closeErr := a.Close(); closeErr != nil {
		t.Error(closeErr)
	}
	if err != nil {
		t.Fatal(err)
	}
	// A busy machine only lengthens a round trip and slows a transfer, so
	// the link is checked from the side load cannot reach: the delay is
	// there and the rate is capped. How close it comes to the profile is
	// a figure of the bench's own report (scripts/bench-links), logged here.
	got := LinkReport{Shaped: true, RTTWant: ms(link.RTT), RTTGot: ms(rtt), RateWant: float64(link.Rate) / 1e6, RateGot: bw / 1e6}
	if got.RTTGot < 0.85*got.RTTWant || got.RateGot > 1.15*got.RateWant {
		t.Errorf("round trip %.3fms for a profile of %.3fms, rate %.0f Mbit/s for %.0f", got.RTTGot, got.RTTWant, got.RateGot, got.RateWant)
	}
	if err := got.Within(0.15); err != nil {
		t.Logf("off the profile by more than 15%%, as a busy machine makes it: %v", err)
	}
	checkNothingLeft(t)
}

func TestLinkRunHasEveryTransportAndLeavesNothing(t *testing.T) {
	needRoot(t)
	r, err := Run(t.Context(), Config{
		Duration: 100 * time.Millisecond, Warmup: 20 * time.Millisecond,
		Lengths: []int32{10}, Concurrency: []int{2}, Link: "lan",
		Cases: []string{MethodHello, MethodItems, TransportGRPC + "/" + MethodStream, TransportRESTH2 + "/" + MethodStream},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.Link == nil || r.Link.Name != "lan" || r.Link.RTTGot <= 0 || r.InProcess {
		t.Fatalf("link report %+v, in-process %v", r.Link, r.InProcess)
	}
	if len(r.Cases) != 2*len(Transports)+2 {
		t.Errorf("%d cases", len(r.Cases))
	}
	// A case may end its 100ms before a call does on a busy machine.
	var calls int64
	for _, c := range r.Cases {
		calls += c.Calls
		if c.Errors != 0 || c.Calls > 0 && c.ServerCPUPerCall == nil {
			t.Errorf("%s: %d calls, %d errors (%s), server CPU %v", c.Name, c.Calls, c.Errors, c.FirstError, c.ServerCPUPerCall)
		}
	}
	if calls == 0 {
		t.Error("no case made a call")
	}
	checkNothingLeft(t)
}

func TestCancelledLinkRunLeavesNothing(t *testing.T) {
	needRoot(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	measuring := make(chan struct{})
	var once bool
	_, err := Run(ctx, Config{
		Duration: time.Minute, Lengths: []int32{10}, Concurrency: []int{2}, Link: "zone", Cases: []string{"rest/items"},
		Progress: func(p Progress) {
			if p.Phase == PhaseMeasure && !once {
				once = true
				close(measuring)
				cancel()
			}
		},
	})
	select {
	case <-measuring:
	default:
		t.Fatal("the run never measured")
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Run returned %v, want context.Canceled", err)
	}
	checkNothingLeft(t)
}

func TestStaleNamespacesAreRemoved(t *testing.T) {
	needRoot(t)
	// A pid with no process: the namespace of a bench that was killed.
	dead := 0
	for pid := 4_000_000; pid > 1; pid-- {
		if _, err := os.Stat("/proc/" + strconv.Itoa(pid)); errors.Is(err, os.ErrNotExist) {
			dead = pid
			break
		}
	}
	stale := newNetnsPair(dead)
	if err := run("ip", "netns", "add", stale.server); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stale.remove() })
	removeStale()
	if stale.exists() {
		t.Errorf("stale namespace %s was not removed", stale.server)
	}
}

func TestApartOnLoopbackPinsAndMeasuresBothSides(t *testing.T) {
	r, err := Run(t.Context(), Config{
		Duration: 100 * time.Millisecond, Warmup: 20 * time.Millisecond,
		Lengths: []int32{10}, Concurrency: []int{1}, Apart: true, Cases: []string{"grpc/items", "rest/items"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r.InProcess || r.Link == nil || r.Link.Name != "loopback" || r.Link.Shaped {
		t.Fatalf("report in-process %v, link %+v", r.InProcess, r.Link)
	}
	for _, c := range r.Cases {
		if c.Calls == 0 || c.Errors != 0 || c.ServerCPUPerCall == nil || c.CPUPerCall <= 0 {
			t.Errorf("%s: %d calls, %d errors (%s), CPU %v, server CPU %v", c.Name, c.Calls, c.Errors, c.FirstError, c.CPUPerCall, c.ServerCPUPerCall)
		}
	}
	checkNothingLeft(t)
}
