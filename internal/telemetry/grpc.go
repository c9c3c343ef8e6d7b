package telemetry

import (
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/contrib/instrumentation/google.golang.org/grpc/otelgrpc"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
)

// Propagator carries the trace across processes in W3C Trace Context
// headers (traceparent, tracestate), which every OpenTelemetry SDK reads.
var Propagator propagation.TextMapPropagator = propagation.TraceContext{}

// otelgrpc also records OpenTelemetry metrics; Prometheus already has them,
// so its meter is a no-op.
func otelgrpcOptions(tp trace.TracerProvider) []otelgrpc.Option {
	return []otelgrpc.Option{
		otelgrpc.WithTracerProvider(tp),
		otelgrpc.WithPropagators(Propagator),
		otelgrpc.WithMeterProvider(metricnoop.NewMeterProvider()),
	}
}

// GRPCServerOptions observes a gRPC server: handled totals, latency and
// stream message counts in reg, and a span per call from tp. Either may be
// nil, and then nothing of it is installed. Pass the options before the
// server's own interceptors, so that the metrics see the final code of
// every call, a recovered panic included. Call ready once the services are
// registered: it creates every method's series at zero, so that rate()
// works from the first scrape.
func GRPCServerOptions(reg *prometheus.Registry, tp trace.TracerProvider) (opts []grpc.ServerOption, ready func(*grpc.Server)) {
	ready = func(*grpc.Server) {}
	if reg != nil {
		m := serverMetrics(reg)
		opts = append(opts,
			grpc.ChainUnaryInterceptor(m.unaryServer),
			grpc.ChainStreamInterceptor(m.streamServer))
		ready = m.initialize
	}
	if tp != nil {
		opts = append(opts, grpc.StatsHandler(otelgrpc.NewServerHandler(otelgrpcOptions(tp)...)))
	}
	return opts, ready
}

// GRPCClientOptions observes the calls of a gRPC client in reg and tp, the
// same way; either may be nil.
func GRPCClientOptions(reg *prometheus.Registry, tp trace.TracerProvider) []grpc.DialOption {
	var opts []grpc.DialOption
	if reg != nil {
		m := clientMetrics(reg)
		opts = append(opts,
			grpc.WithChainUnaryInterceptor(m.unaryClient),
			grpc.WithChainStreamInterceptor(m.streamClient))
	}
	if tp != nil {
		opts = append(opts, grpc.WithStatsHandler(otelgrpc.NewClientHandler(otelgrpcOptions(tp)...)))
	}
	return opts
}
