package cli

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"

	"go.opentelemetry.io/otel"

	"github.com/grpcplay/grpcplay/internal/connlimit"
	"github.com/grpcplay/grpcplay/internal/telemetry"
)

// Observability (issue 5): log format, the backend's metrics port, the
// frontend's /debug page, and tracing from the standard OTEL_* variables.

// defaultMetricsPort is the backend's metrics port: 9464 is the port
// OpenTelemetry's Prometheus exporters use.
const defaultMetricsPort = "9464"

func (m *Main) logFlags(fs *flag.FlagSet) {
	fs.StringVar(&m.logFormat, "log-format", "text", "log format: text, or json for a log pipeline")
}

func (m *Main) metricsFlags(fs *flag.FlagSet) {
	fs.StringVar(&m.metricsAddr, "metrics-addr", m.listenDefault(defaultMetricsPort), "address of the backend's Prometheus /metrics; empty turns metrics off")
}

func (m *Main) debugFlags(fs *flag.FlagSet) {
	fs.BoolVar(&m.frontendCfg.DebugPage, "debug-page", m.command == "serve", "serve /debug: the backend connection, its addresses and call counts")
}

func (m *Main) validateObservability() []error {
	var errs []error
	if m.logFormat != "" && !slices.Contains(telemetry.LogFormats, m.logFormat) {
		errs = append(errs, fmt.Errorf("--log-format must be text or json, got %q", m.logFormat))
	}
	if m.command == "serve" || m.command == "backend" || m.command == "frontend" {
		if telemetry.TracingEnabled(m.Getenv) {
			if _, err := telemetry.TracingProtocol(m.Getenv); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errs
}

// setUpObservability gives each server its own metrics registry, once the
// flags are read: the backend's only when its metrics port is on, the
// frontend's always, since it serves /metrics on its own port.
func (m *Main) setUpObservability() {
	switch m.command {
	case "serve", "backend":
		if m.metricsAddr != "" {
			m.backendCfg.Metrics = telemetry.NewRegistry()
		}
	}
	switch m.command {
	case "serve", "frontend":
		m.frontendCfg.Metrics = telemetry.NewRegistry()
	}
}

// startTracing starts exporting spans when the OTEL_* variables ask for it.
// Otherwise no tracer provider is set, and no server installs a handler.
func (m *Main) startTracing(ctx context.Context) error {
	service := "grpcplay"
	switch m.command {
	case "backend", "frontend":
		service += "-" + m.command
	case "serve":
	default:
		return nil
	}
	t, err := telemetry.NewTracing(ctx, m.Getenv, service)
	if err != nil {
		return err
	}
	m.tracing = t
	if t != nil {
		// Export failures (a collector down) are the SDK's to retry; say so
		// in the process's own log format instead of the SDK's default.
		log := m.log
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("exporting traces", "error", err)
		}))
	}
	m.backendCfg.TracerProvider = t.TracerProvider()
	m.frontendCfg.TracerProvider = t.TracerProvider()
	return nil
}

// startMetrics serves the backend's registry on its own small HTTP port.
func (m *Main) startMetrics() error {
	if m.backendCfg.Metrics == nil {
		return nil
	}
	lis, err := listen("metrics-addr", m.metricsAddr)
	if err != nil {
		return err
	}
	m.metricsLis = lis
	m.metricsSrv = telemetry.NewMetricsServer(m.backendCfg.Metrics, m.log)
	m.servers++
	go func() {
		err := m.metricsSrv.Serve(connlimit.Listener(lis, telemetry.MaxMetricsConns))
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		m.serveErr <- err
	}()
	return nil
}

// MetricsURL is the backend's /metrics, once Run has returned; "" when off.
func (m *Main) MetricsURL() string {
	if m.metricsLis == nil {
		return ""
	}
	return "http://" + dialable(m.metricsLis.Addr(), "localhost") + "/metrics"
}

// logWriter is where the servers log: stderr, through a buffer, so that a
// line per call is not a system call per call (see telemetry.BufferedWriter).
// Other commands write their few lines straight through.
func (m *Main) logWriter() io.Writer {
	switch m.command {
	case "serve", "backend", "frontend":
		m.logOut = telemetry.NewBufferedWriter(m.Stderr)
		return m.logOut
	}
	return m.Stderr
}
