package cli

import (
	"flag"
	"fmt"
	"net"
)

// What each command opens to whom (review A10). `serve` is the newcomer's
// command, run on a laptop: its four ports answer this machine only, since
// /debug shows internal addresses and /compare starts seconds of load on
// demand. `backend` and `frontend` run in containers, where only the
// orchestrator's port mapping decides who reaches them, and must listen on
// every interface of the container for that mapping to work.

// listenDefault is the default listen address of a port for this command.
func (m *Main) listenDefault(port string) string {
	if m.command == "serve" {
		return net.JoinHostPort("localhost", port)
	}
	return ":" + port
}

func (m *Main) compareFlags(fs *flag.FlagSet) {
	fs.BoolVar(&m.comparePage, "compare-page", m.command == "serve",
		"let /compare run its bench: any visitor may then start a few seconds of gRPC-against-REST load on this machine (at most once per interval); off, the page says it is not available")
}

// setUpCompare gives the frontend's /compare its bench only with
// --compare-page; without one the page says the comparison is not
// available here.
func (m *Main) setUpCompare() {
	if m.comparePage {
		m.frontendCfg.Compare = benchComparer{pageBench}
	}
}

// serveBanner is serve's one line on stdout: every address it opened, so a
// newcomer sees where each face is without reading the logs.
func (m *Main) serveBanner(version string) string {
	rest, metrics := "off", "off"
	if u := m.RESTURL(); u != "" {
		rest = u
	}
	if u := m.MetricsURL(); u != "" {
		metrics = u
	}
	return fmt.Sprintf("grpcplay %s: open %s (gRPC backend on %s, %s; REST/JSON on %s; metrics on %s)\n",
		version, m.HTTPURL(), m.target, m.backendSecurity(), rest, metrics)
}
