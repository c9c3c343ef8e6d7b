// Package connlimit caps the connections a listener holds open, and sizes
// the caps from the process's descriptor limit so that a client holding one
// port's every connection leaves descriptors for the other ports.
//
// The cap is golang.org/x/net/netutil's LimitListener: at the cap, Accept
// waits, and new connections wait in the kernel's accept backlog (no
// descriptor of ours) until a held one closes. The servers' idle timeouts
// are what free the slots of clients that connect and do nothing.
package connlimit

import (
	"math"
	"net"
	"syscall"

	"golang.org/x/net/netutil"
)

// Listener returns lis capped at max open connections; max < 1 means no
// cap.
func Listener(lis net.Listener, max int) net.Listener {
	if max < 1 {
		return lis
	}
	return netutil.LimitListener(lis, max)
}

// Share is the cap for a port that may take one part in parts of the
// process's descriptors, but never more than ceiling (which bounds the
// memory idle connections cost, about 20 KB each). parts is larger than the
// number of ports, so that some descriptors are always left for the
// process's own needs: its connections to the backend, log files, DNS.
//
// The Go runtime (1.19 and later) raises the soft RLIMIT_NOFILE to the hard
// limit at start, so the soft limit read here is already the largest the
// process can have.
func Share(parts, ceiling int) int {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur > math.MaxInt32 {
		return ceiling
	}
	return max(1, min(ceiling, int(lim.Cur)/parts))
}
