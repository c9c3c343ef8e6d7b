package cli

import (
	"fmt"
	"net"
	"strconv"
)

// Every *-addr flag is checked in validate, so a typo is a usage error
// before any server starts, and a listen failure names its flag.

// listenAddr is one *-addr flag, with whether an empty value turns that
// listener off.
type listenAddr struct {
	flag       string
	addr       string
	emptyIsOff bool
}

// check refuses an address net.Listen would refuse, before any server
// starts, as a usage error that names the flag.
func (a listenAddr) check() error {
	if a.addr == "" {
		if a.emptyIsOff {
			return nil
		}
		return fmt.Errorf("--%s must not be empty", a.flag)
	}
	_, port, err := net.SplitHostPort(a.addr)
	if err != nil {
		return fmt.Errorf("--%s %q: want host:port or :port: %v", a.flag, a.addr, err)
	}
	// A number only: net.Listen would also take a service name such as
	// "http", which hides the port from whoever reads the setting.
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("--%s %q: the port must be a number from 0 to 65535", a.flag, a.addr)
	}
	return nil
}

// listen opens the listener of one *-addr flag; its error names the flag,
// since "address already in use" alone does not say which of four ports.
func listen(flag, addr string) (net.Listener, error) {
	lis, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--%s %s: %w", flag, addr, err)
	}
	return lis, nil
}
