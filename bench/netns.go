package bench

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// namePrefix begins the name of every namespace and interface a run
// makes, so that they are easy to recognise and to clean up.
const namePrefix = "gpb"

// netnsPair is two network namespaces joined by a veth pair whose two ends
// are shaped by tbf: the client's side of the link (the delay proxy) in
// one, the servers in the other. Nothing else is in them, and their /30
// has no route anywhere else, so no packet can leave the machine.
type netnsPair struct {
	client, server         string // namespace names
	clientDev, serverDev   string
	clientAddr, serverAddr netip.Addr
}

// linkNet is RFC 2544's benchmarking range, 198.18.0.0/15: reserved for
// tests like this one and never routed on the internet.
var linkNet = netip.MustParsePrefix("198.18.0.0/15")

// newNetnsPair names the namespaces of process pid; its /30 comes from the
// pid, so that runs of different processes do not share one.
func newNetnsPair(pid int) *netnsPair {
	base := linkNet.Addr().As4()
	block := uint32(pid%(1<<15)) * 4
	v := uint32(base[0])<<24 | uint32(base[1])<<16 | block
	addr := func(host uint32) netip.Addr {
		x := v + host
		return netip.AddrFrom4([4]byte{byte(x >> 24), byte(x >> 16), byte(x >> 8), byte(x)})
	}
	p := strconv.Itoa(pid)
	return &netnsPair{
		client: namePrefix + "-" + p + "-c", server: namePrefix + "-" + p + "-s",
		clientDev: namePrefix + p + "c", serverDev: namePrefix + p + "s",
		clientAddr: addr(1), serverAddr: addr(2),
	}
}

func run(name string, args ...string) error {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// create makes the namespaces, the veth pair and, when rate is above 0, a
// tbf qdisc of rate bits/s on each end. On failure it removes what it made.
func (n *netnsPair) create(rate int64) error {
	steps := [][]string{
		{"ip", "netns", "add", n.client},
		{"ip", "netns", "add", n.server},
		{"ip", "link", "add", n.clientDev, "netns", n.client, "type", "veth", "peer", "name", n.serverDev, "netns", n.server},
	}
	for _, side := range []struct {
		ns, dev string
		addr    netip.Addr
	}{{n.client, n.clientDev, n.clientAddr}, {n.server, n.serverDev, n.serverAddr}} {
		steps = append(steps,
			[]string{"ip", "-n", side.ns, "addr", "add", side.addr.String() + "/30", "dev", side.dev},
			[]string{"ip", "-n", side.ns, "link", "set", "lo", "up"},
			[]string{"ip", "-n", side.ns, "link", "set", side.dev, "up"},
		)
		if rate > 0 {
			steps = append(steps, append([]string{"tc", "-n", side.ns, "qdisc", "add", "dev", side.dev, "root"}, tbfArgs(rate)...))
		}
	}
	for _, s := range steps {
		if err := run(s[0], s[1:]...); err != nil {
			return errors.Join(err, n.remove())
		}
	}
	return nil
}

// tbfArgs shapes to rate bits/s. The bucket holds a millisecond of traffic
// (at least 64 KB, one GSO segment of veth), enough for the timer to keep
// up without letting a reply through unshaped; the queue holds 50 ms.
func tbfArgs(rate int64) []string {
	burst := max(rate/8/1000, 64<<10)
	return []string{"tbf", "rate", strconv.FormatInt(rate, 10) + "bit", "burst", strconv.FormatInt(burst, 10), "latency", "50ms"}
}

// remove deletes both namespaces; the veth pair and its qdiscs go with
// them. Namespaces already gone are not an error.
func (n *netnsPair) remove() error {
	var errs []error
	for _, ns := range []string{n.client, n.server} {
		if _, err := os.Stat("/run/netns/" + ns); errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err := run("ip", "netns", "delete", ns); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// exists says whether either namespace is still there.
func (n *netnsPair) exists() bool {
	for _, ns := range []string{n.client, n.server} {
		if _, err := os.Stat("/run/netns/" + ns); err == nil {
			return true
		}
	}
	return false
}

// removeStale deletes the namespaces of runs whose process is gone (killed
// before it could clean up): gpb-PID-c and gpb-PID-s with no process PID.
func removeStale() {
	entries, err := os.ReadDir("/run/netns")
	if err != nil {
		return
	}
	for _, e := range entries {
		parts := strings.Split(e.Name(), "-")
		if len(parts) != 3 || parts[0] != namePrefix {
			continue
		}
		pid, err := strconv.Atoi(parts[1])
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat("/proc/" + parts[1]); errors.Is(err, os.ErrNotExist) {
			_ = run("ip", "netns", "delete", e.Name())
		}
	}
}
