package telemetry

import (
	"context"
	"fmt"
	"strings"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is the process's tracer provider, exporting spans over OTLP. A nil
// *Tracing is tracing turned off.
type Tracing struct {
	provider *sdktrace.TracerProvider
}

// TracingEnabled reports whether the standard OpenTelemetry variables ask
// for traces to be exported: an OTLP endpoint is set and the SDK is not
// disabled.
func TracingEnabled(getenv func(string) string) bool {
	if strings.EqualFold(strings.TrimSpace(getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	return getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" || getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != ""
}

// TracingProtocol is the OTLP protocol the variables choose: the traces
// variable wins, then the general one, then the specification's default.
func TracingProtocol(getenv func(string) string) (string, error) {
	p := getenv("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
	if p == "" {
		p = getenv("OTEL_EXPORTER_OTLP_PROTOCOL")
	}
	switch p = strings.TrimSpace(p); p {
	case "":
		return "http/protobuf", nil
	case "grpc", "http/protobuf":
		return p, nil
	}
	return "", fmt.Errorf("OTLP protocol %q is not supported: use grpc or http/protobuf", p)
}

// NewTracing starts tracing when TracingEnabled, and returns nil otherwise.
// The exporter reads the standard OTEL_EXPORTER_OTLP_* variables itself
// (endpoint, headers, TLS, timeout), and the SDK reads OTEL_TRACES_SAMPLER*
// and OTEL_BSP_*. service names the process unless OTEL_SERVICE_NAME does.
// Nothing is dialled here: spans are sent in batches, in the background.
func NewTracing(ctx context.Context, getenv func(string) string, service string) (*Tracing, error) {
	if !TracingEnabled(getenv) {
		return nil, nil
	}
	protocol, err := TracingProtocol(getenv)
	if err != nil {
		return nil, err
	}
	var exporter sdktrace.SpanExporter
	if protocol == "grpc" {
		exporter, err = otlptracegrpc.New(ctx)
	} else {
		exporter, err = otlptracehttp.New(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", service)),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME, OTEL_RESOURCE_ATTRIBUTES
		resource.WithTelemetrySDK(),
		resource.WithHost(),
	)
	if err != nil {
		return nil, fmt.Errorf("trace resource: %w", err)
	}
	return &Tracing{provider: sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter),
		sdktrace.WithResource(res),
	)}, nil
}

// TracerProvider is what servers and clients trace with: nil when tracing
// is off, so that they install no handler at all.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if t == nil {
		return nil
	}
	return t.provider
}

// Shutdown sends the spans still buffered and stops the exporter, within ctx.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// TraceID returns the id of the trace ctx is in, or "" outside of one.
func TraceID(ctx context.Context) string {
	sc := trace.SpanContextFromContext(ctx)
	if !sc.HasTraceID() {
		return ""
	}
	return sc.TraceID().String()
}
