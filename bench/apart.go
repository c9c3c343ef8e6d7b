package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// apart is a run's servers in a process of their own, pinned to their own
// core, and for a link other than loopback the delay proxy in a third
// process, across two network namespaces joined by a shaped veth pair when
// the machine allows it:
//
//	bench (client, core 0) --loopback--> proxy [ns gpb-PID-c]
//	    --veth, tbf each way--> servers [ns gpb-PID-s, core 1]
//
// The proxy's listeners are made here, in the bench's namespace, and handed
// to it, so the bench reaches them on loopback while the proxy's upstream
// connections start in its own namespace.
type apart struct {
	link    Link
	ns      *netnsPair
	server  *child
	proxy   *child
	targets targets
	probe   string
	dial    dialFunc
	pid     int
	report  LinkReport
	restore func() error
}

// startApart starts the processes of a run apart on link; on failure it
// stops what it started.
func startApart(ctx context.Context, link Link) (a *apart, err error) {
	a = &apart{link: link, dial: handshakeDial(link.RTT)}
	defer func() {
		if err != nil {
			err = errors.Join(err, a.Close())
			a = nil
		}
	}()
	serverCPU, clientCPU := -1, -1
	if runtime.NumCPU() >= 2 {
		clientCPU, serverCPU = 0, 1
	}
	a.report = LinkReport{Name: link.Name, Models: link.Models, RTTWant: ms(link.RTT), RateWant: float64(link.Rate) / 1e6,
		ServerCPU: serverCPU, ClientCPU: clientCPU}
	emulated := link.RTT > 0 || link.Rate > 0
	host := "127.0.0.1"
	if emulated {
		host = a.makeNamespaces()
	}
	addrs, err := a.startServer(ctx, host, serverCPU)
	if err != nil {
		return a, err
	}
	if emulated {
		if err := a.startProxy(ctx, addrs); err != nil {
			return a, err
		}
	}
	// Pinned after the children start, which inherit the bench's full set,
	// and before the link is measured, as it will run.
	if clientCPU >= 0 {
		old, err := pinTo(clientCPU)
		if err != nil {
			return a, fmt.Errorf("pinning the client to core %d: %w", clientCPU, err)
		}
		a.restore = old.undo
	}
	return a, a.measure(ctx)
}

// makeNamespaces makes the namespaces and returns the servers' address; where
// it cannot, the report says why and the servers listen on loopback.
func (a *apart) makeNamespaces() string {
	if os.Geteuid() != 0 {
		a.report.Note = "not root: no network namespaces, so the bandwidth is not shaped; the link is the delay proxy's round trip alone"
		return "127.0.0.1"
	}
	removeStale()
	n := newNetnsPair(os.Getpid())
	if err := n.create(a.link.Rate); err != nil {
		a.report.Note = fmt.Sprintf("no network namespaces (%v), so the bandwidth is not shaped; the link is the delay proxy's round trip alone", err)
		return "127.0.0.1"
	}
	a.ns = n
	a.report.Shaped = a.link.Rate > 0
	return n.serverAddr.String()
}

func (a *apart) startServer(ctx context.Context, host string, cpu int) (serverAddrs, error) {
	var addrs serverAddrs
	ns := ""
	if a.ns != nil {
		ns = a.ns.server
	}
	c, err := startChild(roleServer, ns, childSpec{Host: host, CPU: cpu}, nil)
	if err != nil {
		return addrs, err
	}
	a.server, a.pid = c, c.cmd.Process.Pid
	line, err := c.line(ctx)
	if err != nil {
		return addrs, err
	}
	if err := json.Unmarshal([]byte(line), &addrs); err != nil {
		return addrs, fmt.Errorf("server child: %q: %w", line, err)
	}
	a.targets = targets{grpc: addrs.GRPC, rest: "http://" + addrs.REST, restH2: "http://" + addrs.RESTH2,
		restTLS: "https://" + addrs.TLS, restPlain: "http://" + addrs.Plain, certPEM: addrs.Cert}
	a.probe = addrs.Probe
	return addrs, nil
}

// startProxy puts the delay proxy between the bench and every server
// address, and points the targets at it.
func (a *apart) startProxy(ctx context.Context, addrs serverAddrs) error {
	ups := []string{addrs.GRPC, addrs.REST, addrs.RESTH2, addrs.TLS, addrs.Probe, addrs.Plain}
	var files []*os.File
	var locals []string
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	for range ups {
		lis, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return err
		}
		f, err := lis.(*net.TCPListener).File()
		lis.Close()
		if err != nil {
			return err
		}
		files, locals = append(files, f), append(locals, lis.Addr().String())
	}
	ns := ""
	if a.ns != nil {
		ns = a.ns.client
	}
	c, err := startChild(roleProxy, ns, childSpec{CPU: -1, Upstreams: ups, Window: proxyWindow(a.link)}, files)
	if err != nil {
		return err
	}
	a.proxy = c
	if _, err := c.line(ctx); err != nil {
		return err
	}
	a.targets = targets{grpc: locals[0], rest: "http://" + locals[1], restH2: "http://" + locals[2],
		restTLS: "https://" + locals[3], restPlain: "http://" + locals[5], certPEM: addrs.Cert}
	a.probe = locals[4]
	return nil
}

// proxyWindow is what each direction of a proxied connection may hold in
// flight: twice the link's bandwidth-delay product, so that the proxy
// never limits a transfer below the link's rate.
func proxyWindow(l Link) int {
	rate := l.Rate
	if rate == 0 {
		rate = 10e9
	}
	return max(int(float64(rate)/8*l.RTT.Seconds()), 256<<10)
}

func (a *apart) setOneWay(ctx context.Context, d time.Duration) error {
	if _, err := fmt.Fprintf(a.proxy.stdin, "oneway %s\n", strconv.FormatInt(int64(d), 10)); err != nil {
		return err
	}
	_, err := a.proxy.line(ctx)
	return err
}

func (a *apart) measure(ctx context.Context) error {
	var set func(time.Duration) error
	if a.proxy != nil {
		set = func(d time.Duration) error { return a.setOneWay(ctx, d) }
	}
	var d net.Dialer
	rtt, bw, err := measureLink(ctx, d.DialContext, a.probe, a.link, set)
	if err != nil {
		return err
	}
	a.report.RTTGot, a.report.RateGot = ms(rtt), bw/1e6
	if err := a.report.Within(0.1); err != nil {
		// Said in the report rather than refused: the cases still run, and
		// the reader sees how far off the link was.
		a.report.Note = strings.TrimPrefix(a.report.Note+"; more than 10% off the profile: "+strings.ReplaceAll(err.Error(), "\n", ", "), "; ")
	}
	return nil
}

// snapshot asks the server child for its Service's calls so far; nil when
// it cannot tell.
func (a *apart) snapshot() map[string]int64 {
	if _, err := fmt.Fprintln(a.server.stdin, "counts"); err != nil {
		return nil
	}
	line, err := a.server.line(context.Background())
	if err != nil {
		return nil
	}
	var counts map[string]int64
	if json.Unmarshal([]byte(line), &counts) != nil {
		return nil
	}
	return counts
}

// Close restores the bench's cores, stops the children and removes the
// namespaces, whatever happened before.
func (a *apart) Close() error {
	var errs []error
	if a.restore != nil {
		errs = append(errs, a.restore())
	}
	for _, c := range []*child{a.proxy, a.server} {
		if c != nil {
			errs = append(errs, c.stop())
		}
	}
	if a.ns != nil {
		errs = append(errs, a.ns.remove())
	}
	return errors.Join(errs...)
}

// handshakeDial dials TCP and then waits one round trip, the time TCP's
// handshake takes on the link before the client may send: through the
// proxy the handshake itself only crosses loopback.
func handshakeDial(rtt time.Duration) dialFunc {
	var d net.Dialer
	if rtt == 0 {
		return d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		t := time.NewTimer(rtt)
		defer t.Stop()
		if !preciseSleep(ctx.Done(), t, rtt) {
			conn.Close()
			return nil, ctx.Err()
		}
		return conn, nil
	}
}
