package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"go.opentelemetry.io/otel"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/bench/compare"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/frontend"
	"github.com/grpcplay/grpcplay/gateway"
	"github.com/grpcplay/grpcplay/internal/clientlimit"
	"github.com/grpcplay/grpcplay/internal/connlimit"
	"github.com/grpcplay/grpcplay/internal/telemetry"
)

// defaultTraceFlushTimeout bounds the export of the last spans. It is apart
// from the grace period, which the drains may use up by design.
const defaultTraceFlushTimeout = 5 * time.Second

// servers owns what a server command runs: its listeners and servers, the
// client its frontend calls the backend with, its tracing and its buffered
// log, and the order they stop in (shutdownStages).
type servers struct {
	log     *slog.Logger
	logOut  *telemetry.BufferedWriter
	tracing *telemetry.Tracing
	// trustedProxies is --trusted-proxies, for the page and REST ports.
	trustedProxies clientlimit.Proxies
	// traceFlushTimeout bounds the flush of the last spans.
	traceFlushTimeout time.Duration

	grpcLis, httpLis, restLis, metricsLis net.Listener
	restTLS                               bool

	backend  *backend.Server
	frontend *frontend.Server
	client   *client.Client
	rest     *gateway.Server
	metrics  *http.Server

	running []*running
	// exited holds the first server to stop of its own accord.
	exited chan *running
}

// server is what the CLI needs of each server it runs: the backend, the
// frontend and the gateway share this contract, and so does the metrics
// port's http.Server.
type server interface {
	Serve(lis net.Listener) error
	Shutdown(ctx context.Context) error
}

var (
	_ server = (*backend.Server)(nil)
	_ server = (*frontend.Server)(nil)
	_ server = (*gateway.Server)(nil)
	_ server = (*http.Server)(nil)
)

// running is one server's Serve loop.
type running struct {
	done chan struct{}
	err  error
	// reported is set when Wait has returned err, so Close does not again.
	reported bool
}

func newServers() *servers {
	return &servers{traceFlushTimeout: defaultTraceFlushTimeout, exited: make(chan *running, 1)}
}

// serve runs srv's Serve loop on lis until it returns.
func (s *servers) serve(srv server, lis net.Listener) {
	r := &running{done: make(chan struct{})}
	s.running = append(s.running, r)
	go func() {
		r.err = srv.Serve(lis)
		if errors.Is(r.err, http.ErrServerClosed) {
			r.err = nil
		}
		close(r.done)
		select {
		case s.exited <- r:
		default:
		}
	}()
}

// wait blocks until ctx ends or a server stops.
func (s *servers) wait(ctx context.Context, grace time.Duration) error {
	if len(s.running) == 0 {
		return nil
	}
	select {
	case <-ctx.Done():
		s.log.Info("shutting down", "grace", grace)
		return nil
	case r := <-s.exited:
		r.reported = true
		if r.err == nil {
			return errors.New("a server stopped unexpectedly")
		}
		return r.err
	}
}

// shutdownStages is the order in which Close stops a process, within one
// grace period. A drain that runs out of grace is cut off by design: the
// server logs it, and it is not a failure of the process. Nor is a failed
// flush of the last spans, which has its own short timeout.
var shutdownStages = []struct {
	what string
	stop func(s *servers, ctx context.Context) error
}{
	{"gRPC health turns NOT_SERVING, so probes and load balancers stop sending while every face still answers", (*servers).setNotServing},
	{"the frontend drains, so that it sends no new calls to the backend", (*servers).drainFrontend},
	{"the REST gateway and the gRPC server drain side by side, each with the whole rest of the grace, so a slow REST client does not cut the gRPC streams short", (*servers).drainBackend},
	{"the metrics port stops, having counted all of the above", (*servers).stopMetrics},
	{"every Serve loop has returned", (*servers).awaitServeLoops},
	{"the spans of the last calls are flushed", (*servers).flushTraces},
	{"last, the buffered log is closed, so the lines above, the flush's warning included, are written", (*servers).closeLog},
}

// close runs shutdownStages in order and joins their errors.
func (s *servers) close(grace time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	var errs []error
	for _, stage := range shutdownStages {
		errs = append(errs, stage.stop(s, ctx))
	}
	return errors.Join(errs...)
}

func (s *servers) setNotServing(context.Context) error {
	if s.backend != nil {
		s.backend.SetNotServing()
	}
	return nil
}

func (s *servers) drainFrontend(ctx context.Context) error {
	var errs []error
	if s.frontend != nil {
		errs = append(errs, withoutForcedStop(s.frontend.Shutdown(ctx)))
	}
	if s.client != nil {
		errs = append(errs, s.client.Close())
	}
	return errors.Join(errs...)
}

func (s *servers) drainBackend(ctx context.Context) error {
	var drains sync.WaitGroup
	var restErr, grpcErr error
	if s.rest != nil {
		drains.Go(func() { restErr = withoutForcedStop(s.rest.Shutdown(ctx)) })
	}
	if s.backend != nil {
		drains.Go(func() { grpcErr = withoutForcedStop(s.backend.Shutdown(ctx)) })
	}
	drains.Wait()
	return errors.Join(restErr, grpcErr)
}

// stopMetrics stops the metrics port; a scrape still running when the grace
// is over is cut off.
func (s *servers) stopMetrics(ctx context.Context) error {
	if s.metrics == nil {
		return nil
	}
	if err := s.metrics.Shutdown(ctx); err != nil {
		s.log.Warn("grace period over; closing metrics connections", "error", err)
		return withoutForcedStop(errors.Join(err, s.metrics.Close()))
	}
	return nil
}

func (s *servers) awaitServeLoops(context.Context) error {
	var errs []error
	for _, r := range s.running {
		<-r.done
		if !r.reported {
			errs = append(errs, r.err)
		}
	}
	s.running = nil
	return errors.Join(errs...)
}

// flushTraces flushes the spans of the last calls, once the servers have
// stopped. A collector that is down or slow costs those spans, which the
// log says, but the servers stopped cleanly: the exit status stays 0.
func (s *servers) flushTraces(context.Context) error {
	ctx, cancel := context.WithTimeout(context.Background(), s.traceFlushTimeout)
	defer cancel()
	if err := s.tracing.Shutdown(ctx); err != nil {
		s.log.Warn("flushing traces at shutdown; the last spans are lost", "error", err, "timeout", s.traceFlushTimeout)
	}
	return nil
}

func (s *servers) closeLog(context.Context) error {
	if s.logOut == nil {
		return nil
	}
	return s.logOut.Close()
}

// withoutForcedStop drops the deadline error of a drain cut off when the
// grace ran out, keeping any other error joined to it.
func withoutForcedStop(err error) error {
	var all []error
	if joined, ok := err.(interface{ Unwrap() []error }); ok {
		all = joined.Unwrap()
	} else if err != nil {
		all = []error{err}
	}
	var rest []error
	for _, e := range all {
		if !errors.Is(e, context.DeadlineExceeded) {
			rest = append(rest, e)
		}
	}
	return errors.Join(rest...)
}

// startTracing starts exporting spans when the OTEL_* variables ask for it.
// Otherwise no tracer provider is set, and no server installs a handler.
func (s *servers) startTracing(ctx context.Context, getenv func(string) string, service string) error {
	t, err := telemetry.NewTracing(ctx, getenv, service)
	if err != nil {
		return err
	}
	s.tracing = t
	if t != nil {
		// Export failures (a collector down) are the SDK's to retry; say so
		// in the process's own log format instead of the SDK's default.
		log := s.log
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("exporting traces", "error", err)
		}))
	}
	return nil
}

// startBackend serves gRPC, then the metrics port and the REST gateway.
// The backend's metrics registry exists only when its port is on.
func (s *servers) startBackend(b *backendFlags) error {
	lis, err := listen("grpc-addr", b.grpcAddr)
	if err != nil {
		return err
	}
	s.grpcLis = lis
	cfg := b.cfg
	cfg.Logger = s.log
	cfg.TracerProvider = s.tracing.TracerProvider()
	if b.metricsAddr != "" {
		cfg.Metrics = telemetry.NewRegistry()
	}
	s.backend = backend.New(cfg)
	s.serve(s.backend, lis)
	if err := s.startMetrics(cfg, b.metricsAddr); err != nil {
		return err
	}
	return s.startREST(cfg, b.restAddr, b.restMaxConns)
}

// startMetrics serves the backend's registry on its own small HTTP port.
func (s *servers) startMetrics(cfg backend.Config, addr string) error {
	if cfg.Metrics == nil {
		return nil
	}
	lis, err := listen("metrics-addr", addr)
	if err != nil {
		return err
	}
	s.metricsLis = lis
	s.metrics = telemetry.NewMetricsServer(cfg.Metrics, s.log)
	s.serve(s.metrics, connlimit.New(lis, connlimit.Options{Max: telemetry.MaxMetricsConns, Port: "metrics", Metrics: cfg.Metrics}))
	return nil
}

// startREST serves the REST/JSON gateway next to the gRPC backend, on the
// same Service, so both faces give the same answers under the same limits.
func (s *servers) startREST(backendCfg backend.Config, addr string, maxConns int) error {
	if addr == "" {
		return nil
	}
	lis, err := listen("rest-addr", addr)
	if err != nil {
		return err
	}
	if c := backendCfg.TLS; c != nil {
		// The REST face is no more open than the gRPC one: the same
		// certificate and, with --tls-client-ca, the same client
		// certificates. The gateway speaks HTTP/1.1, not gRPC's h2.
		c = c.Clone()
		c.NextProtos = []string{"http/1.1"}
		lis = tls.NewListener(lis, c)
		s.restTLS = true
	}
	s.restLis = lis
	cfg := gateway.DefaultConfig
	cfg.Logger = s.log
	cfg.MaxConns = maxConns
	cfg.TrustedProxies = s.trustedProxies
	// The backend's metrics registry and tracer: REST and gRPC calls of the
	// one backend show up side by side.
	cfg.Metrics = backendCfg.Metrics
	cfg.TracerProvider = backendCfg.TracerProvider
	s.rest = gateway.New(cfg, s.backend.Service())
	s.serve(s.rest, lis)
	s.log.Info("REST/JSON gateway listening", "url", s.restURL())
	return nil
}

// startFrontend connects to the backend at target and serves the pages. The
// frontend has its own metrics registry, served on its own port.
func (s *servers) startFrontend(f *frontendFlags, target string, opts []client.Option) error {
	cfg := f.cfg
	cfg.Logger = s.log
	cfg.TrustedProxies = s.trustedProxies
	cfg.TracerProvider = s.tracing.TracerProvider()
	cfg.Metrics = telemetry.NewRegistry()
	c, err := client.New(target, append(opts, client.WithDialOptions(
		telemetry.GRPCClientOptions(cfg.Metrics, cfg.TracerProvider)...))...)
	if err != nil {
		return fmt.Errorf("backend target %q: %w", target, err)
	}
	s.client = c
	lis, err := listen("http-addr", f.httpAddr)
	if err != nil {
		return err
	}
	s.httpLis = lis
	// Without --compare-page, /compare says the comparison is not available.
	var benchPage compare.Config
	if f.comparePage {
		benchPage.Comparer = benchComparer{pageBench}
		benchPage.Estimate = pageBenchEstimate
	}
	cfg.Pages = append(cfg.Pages, compare.Page(benchPage))
	s.frontend = frontend.New(cfg, c)
	s.serve(s.frontend, lis)
	return nil
}

// restURL is the gateway's base URL, or "" when it is off.
func (s *servers) restURL() string {
	if s.restLis == nil {
		return ""
	}
	scheme := "http://"
	if s.restTLS {
		scheme = "https://"
	}
	return scheme + dialable(s.restLis.Addr(), "localhost")
}
