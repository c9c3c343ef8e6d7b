// Package telemetry wires grpcplay's observability: Prometheus registries and
// the gRPC and HTTP metrics in them, OpenTelemetry tracing exported over OTLP,
// and slog loggers. Every piece is passed in explicitly (no global registry,
// tracer provider or propagator), so that servers in one test process do not
// see each other's data, and a piece that is nil costs nothing.
package telemetry
