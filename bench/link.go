package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"time"
)

// Link is a network between client and server that a run emulates.
type Link struct {
	Name   string
	RTT    time.Duration // round trip added by the delay
	Rate   int64         // bits per second each way; 0: unshaped
	Models string
}

// Links are the profiles of --link, fastest first.
var Links = []Link{
	{Name: "loopback", Models: "client and server on one machine: no round trip, no bandwidth limit to speak of"},
	{Name: "lan", RTT: 200 * time.Microsecond, Rate: 10e9, Models: "two servers in one rack or data-centre row, 10 Gbit/s Ethernet"},
	{Name: "zone", RTT: time.Millisecond, Rate: 1e9, Models: "two availability zones of one cloud region, or a busy 1 Gbit/s office network"},
	{Name: "wan", RTT: 40 * time.Millisecond, Rate: 100e6, Models: "two regions or a service called across the internet, over 100 Mbit/s"},
}

// LinkByName returns the profile called name.
func LinkByName(name string) (Link, bool) {
	i := slices.IndexFunc(Links, func(l Link) bool { return l.Name == name })
	if i < 0 {
		return Link{}, false
	}
	return Links[i], true
}

// LinkNames lists the profiles' names, for messages.
func LinkNames() string {
	names := make([]string, len(Links))
	for i, l := range Links {
		names[i] = l.Name
	}
	return strings.Join(names, ", ")
}

// LinkReport is the emulated link of a run, as wanted and as measured.
type LinkReport struct {
	Name   string `json:"name"`
	Models string `json:"models"`
	// Shaped says whether the bandwidth was shaped in the kernel (between
	// two network namespaces); without root it is not, and Note says so.
	Shaped    bool    `json:"shaped"`
	RTTWant   float64 `json:"rtt_ms_profile"`
	RTTGot    float64 `json:"rtt_ms_measured"`
	RateWant  float64 `json:"mbit_per_sec_profile"`
	RateGot   float64 `json:"mbit_per_sec_measured"`
	Note      string  `json:"note,omitempty"`
	ServerCPU int     `json:"server_cpu"` // the core the server was pinned to; -1: none
	ClientCPU int     `json:"client_cpu"`
}

// Within says whether the measured round trip and bandwidth are within
// frac (0.1 for 10%) of the profile's.
func (l *LinkReport) Within(frac float64) error {
	var errs []error
	if l.RTTWant > 0 && !near(l.RTTGot, l.RTTWant, frac) {
		errs = append(errs, fmt.Errorf("round trip %.3fms, profile %.3fms", l.RTTGot, l.RTTWant))
	}
	if l.Shaped && l.RateWant > 0 && !near(l.RateGot, l.RateWant, frac) {
		errs = append(errs, fmt.Errorf("bandwidth %.0f Mbit/s, profile %.0f Mbit/s", l.RateGot, l.RateWant))
	}
	return errors.Join(errs...)
}

func near(got, want, frac float64) bool { return got >= want*(1-frac) && got <= want*(1+frac) }

func (l *LinkReport) String() string {
	s := fmt.Sprintf("link %s (%s): round trip %.3fms measured, %.3fms profile", l.Name, l.Models, l.RTTGot, l.RTTWant)
	if l.RateWant > 0 {
		s += fmt.Sprintf("; bandwidth %.0f Mbit/s measured, %.0f Mbit/s profile", l.RateGot, l.RateWant)
	}
	if l.Note != "" {
		s += "; " + l.Note
	}
	return s
}

// The probe protocol, served beside the servers: the client sends a
// big-endian uint64 N and the server answers N bytes, on one connection as
// many times as asked. N=1 is a ping; a large N a transfer.

func serveProbe(lis net.Listener) {
	for {
		conn, err := lis.Accept()
		if err != nil {
			return
		}
		go answerProbe(conn)
	}
}

func answerProbe(conn net.Conn) {
	defer conn.Close()
	out := make([]byte, 1<<20)
	var req [8]byte
	for {
		if _, err := io.ReadFull(conn, req[:]); err != nil {
			return
		}
		for n := binary.BigEndian.Uint64(req[:]); n > 0; {
			k := min(n, uint64(len(out)))
			if _, err := conn.Write(out[:k]); err != nil {
				return
			}
			n -= k
		}
	}
}

// probeConn is the client side of the probe protocol.
type probeConn struct {
	conn net.Conn
	buf  []byte
}

// fetch asks for n bytes and returns how long they took to arrive.
func (p *probeConn) fetch(n uint64) (time.Duration, error) {
	var req [8]byte
	binary.BigEndian.PutUint64(req[:], n)
	start := time.Now()
	if _, err := p.conn.Write(req[:]); err != nil {
		return 0, err
	}
	for n > 0 {
		k, err := p.conn.Read(p.buf[:min(n, uint64(len(p.buf)))])
		if err != nil {
			return 0, err
		}
		n -= uint64(k)
	}
	return time.Since(start), nil
}

// rtt is the median of pings round trips, taken after one warm-up ping.
func (p *probeConn) rtt(pings int) (time.Duration, error) {
	if _, err := p.fetch(1); err != nil {
		return 0, err
	}
	times := make([]time.Duration, pings)
	for i := range times {
		d, err := p.fetch(1)
		if err != nil {
			return 0, err
		}
		times[i] = d
	}
	slices.Sort(times)
	return times[len(times)/2], nil
}

// measureLink measures the round trip and bandwidth of the path to a probe
// listener. setOneWay, when the link has a round trip, sets the delay of
// each direction: it is set to the profile's round trip less what the path
// already takes, measured first, so that the total is the profile's.
func measureLink(ctx context.Context, dial dialFunc, probeAddr string, l Link, setOneWay func(time.Duration) error) (rtt time.Duration, bitsPerSec float64, err error) {
	conn, err := dial(ctx, "tcp", probeAddr)
	if err != nil {
		return 0, 0, fmt.Errorf("link probe: %w", err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Now()) })
	defer stop()
	p := &probeConn{conn: conn, buf: make([]byte, 1<<20)}
	pings := 200
	if l.RTT > 5*time.Millisecond {
		pings = 15
	}
	if rtt, err = p.rtt(pings); err != nil {
		return 0, 0, err
	}
	if l.RTT > 0 && setOneWay != nil {
		if rtt, err = p.calibrate(l.RTT, rtt, pings, setOneWay); err != nil {
			return 0, 0, err
		}
	}
	bitsPerSec, err = p.bandwidth(l, rtt)
	return rtt, bitsPerSec, err
}

// calibrate sets the one-way delay so that the round trip is want: first
// half of what the path lacks, then a few corrections for the delay's own
// wake-ups, each bounded to a tenth of the delay so that one noisy
// measurement cannot swing it; it keeps the closest and returns the round
// trip measured with it.
func (p *probeConn) calibrate(want, base time.Duration, pings int, setOneWay func(time.Duration) error) (time.Duration, error) {
	oneWay := max(want-base, 0) / 2
	bestOneWay, bestRTT := oneWay, time.Duration(0)
	for range calibrationRounds {
		if err := setOneWay(oneWay); err != nil {
			return 0, err
		}
		rtt, err := p.rtt(pings)
		if err != nil {
			return 0, err
		}
		if bestRTT == 0 || (rtt-want).Abs() < (bestRTT-want).Abs() {
			bestOneWay, bestRTT = oneWay, rtt
		}
		if near(float64(rtt), float64(want), 0.02) {
			return rtt, nil
		}
		step := want / 20
		oneWay = max(oneWay+min(max((want-rtt)/2, -step), step), 0)
	}
	if err := setOneWay(bestOneWay); err != nil {
		return 0, err
	}
	return p.rtt(pings)
}

// calibrationRounds bounds the corrections of the delay.
const calibrationRounds = 8

// bandwidth is the best of three transfers of about a fifth of a second at
// the profile's rate (64 MB unshaped), each less the round trip of its
// request: the payload's rate, above TCP/IP's headers. The best, since the
// machine's other work only ever slows a transfer down.
func (p *probeConn) bandwidth(l Link, rtt time.Duration) (float64, error) {
	size := uint64(64 << 20)
	if l.Rate > 0 {
		size = uint64(l.Rate / 8 / 5)
	}
	// A first, shorter transfer opens TCP's congestion window.
	if _, err := p.fetch(size / 4); err != nil {
		return 0, err
	}
	best := 0.0
	for range 3 {
		d, err := p.fetch(size)
		if err != nil {
			return 0, err
		}
		if d -= rtt; d <= 0 {
			return 0, errors.New("link probe: transfer quicker than a round trip")
		}
		best = max(best, float64(size)*8/d.Seconds())
	}
	return best, nil
}
