package cli

import (
	"context"
	"errors"
	"sync"
	"time"
)

// defaultTraceFlushTimeout bounds the export of the last spans. It is apart
// from the grace period, which the drains may use up by design.
const defaultTraceFlushTimeout = 5 * time.Second

// isServer reports whether the command runs servers until it is stopped.
func (m *Main) isServer() bool {
	switch m.command {
	case "serve", "backend", "frontend":
		return true
	}
	return false
}

// Close stops the servers gracefully, within one grace period (review A7):
//  1. gRPC health turns NOT_SERVING, so probes and load balancers stop
//     sending while every face still answers;
//  2. the frontend drains, so that it sends no new calls to the backend;
//  3. the REST gateway and the gRPC server drain side by side, each with
//     the whole rest of the grace, so a slow REST client does not cut the
//     gRPC streams short;
//  4. the metrics port stops, having counted all of the above.
//
// A drain that runs out of grace is cut off by design: the server logs it,
// and it is not a failure of the process (review A6). Nor is a failed flush
// of the last spans, which has its own short timeout.
func (m *Main) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), m.grace)
	defer cancel()
	var errs []error
	if m.backendSrv != nil {
		m.backendSrv.SetNotServing()
	}
	if m.frontendSrv != nil {
		errs = append(errs, withoutForcedStop(m.frontendSrv.Shutdown(ctx)))
	}
	if m.client != nil {
		errs = append(errs, m.client.Close())
	}
	var drains sync.WaitGroup
	var restErr error
	drains.Go(func() { restErr = withoutForcedStop(m.closeREST(ctx)) })
	if m.backendSrv != nil {
		drains.Go(func() { m.backendSrv.Shutdown(ctx) })
	}
	drains.Wait()
	errs = append(errs, restErr, m.stopMetrics(ctx))
	for range m.servers {
		errs = append(errs, <-m.serveErr)
	}
	m.servers = 0
	m.stopTracing()
	if m.logOut != nil {
		// Last: the lines above, the flush's warning included, are written.
		errs = append(errs, m.logOut.Close())
	}
	return errors.Join(errs...)
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

// stopMetrics stops the metrics port; a scrape still running when the grace
// is over is cut off.
func (m *Main) stopMetrics(ctx context.Context) error {
	if m.metricsSrv == nil {
		return nil
	}
	if err := m.metricsSrv.Shutdown(ctx); err != nil {
		m.log.Warn("grace period over; closing metrics connections", "error", err)
		return withoutForcedStop(errors.Join(err, m.metricsSrv.Close()))
	}
	return nil
}

// stopTracing flushes the spans of the last calls, once the servers have
// stopped. A collector that is down or slow costs those spans, which the
// log says, but the servers stopped cleanly: the exit status stays 0.
func (m *Main) stopTracing() {
	ctx, cancel := context.WithTimeout(context.Background(), m.traceFlushTimeout)
	defer cancel()
	if err := m.tracing.Shutdown(ctx); err != nil {
		m.log.Warn("flushing traces at shutdown; the last spans are lost", "error", err, "timeout", m.traceFlushTimeout)
	}
}
