package cli

import (
	"context"
	"crypto/tls"
	"flag"

	"github.com/grpcplay/grpcplay/gateway"
)

// The REST/JSON face of the backend (issue 6): grpc-gateway in the backend's
// process, calling its Service directly.

func (m *Main) restFlags(fs *flag.FlagSet) {
	fs.StringVar(&m.restAddr, "rest-addr", m.listenDefault("8080"), "address the REST/JSON gateway listens on; empty turns it off")
}

// startREST serves the gateway next to the gRPC backend, on the same
// Service, so both faces give the same answers under the same limits.
func (m *Main) startREST() error {
	if m.restAddr == "" {
		return nil
	}
	lis, err := listen("rest-addr", m.restAddr)
	if err != nil {
		return err
	}
	if c := m.backendCfg.TLS; c != nil {
		// The REST face is no more open than the gRPC one: the same
		// certificate and, with --tls-client-ca, the same client
		// certificates. The gateway speaks HTTP/1.1, not gRPC's h2.
		c = c.Clone()
		c.NextProtos = []string{"http/1.1"}
		lis = tls.NewListener(lis, c)
	}
	m.restLis = lis
	cfg := gateway.DefaultConfig
	cfg.Logger = m.log
	// The backend's metrics registry and tracer: REST and gRPC calls of the
	// one backend show up side by side.
	cfg.Metrics = m.backendCfg.Metrics
	cfg.TracerProvider = m.backendCfg.TracerProvider
	m.restSrv = gateway.New(cfg, m.backendSrv.Service())
	m.servers++
	go func() { m.serveErr <- m.restSrv.Serve(lis) }()
	m.log.Info("REST/JSON gateway listening", "url", m.RESTURL())
	return nil
}

// closeREST stops the gateway; Close runs it next to the gRPC drain.
func (m *Main) closeREST(ctx context.Context) error {
	if m.restSrv == nil {
		return nil
	}
	return m.restSrv.Shutdown(ctx)
}

// RESTURL is the gateway's base URL once Run has returned, or "" when it is
// off.
func (m *Main) RESTURL() string {
	if m.restLis == nil {
		return ""
	}
	scheme := "http://"
	if m.backendCfg.TLS != nil {
		scheme = "https://"
	}
	return scheme + dialable(m.restLis.Addr(), "localhost")
}
