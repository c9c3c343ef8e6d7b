package telemetry

import (
	"context"
	"errors"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// rpcMetrics are the series of go-grpc-middleware's Prometheus provider
// (grpc_server_* or grpc_client_*: the same names, help, labels and
// buckets, so dashboards and alerts written for it work), recorded at a
// fraction of its cost. The provider looks each series up by its label
// values on every call and every streamed message, and reads the clock
// around each message: about 0.4 µs a message, 15% of a getStream. Here
// each method's series are looked up once and kept, the clock is read twice
// a call, and a stream's messages are counted on the stream and added to
// their counters once, when it ends. So a stream's messages show up in
// msg_sent_total and msg_received_total when the stream is over, not as
// they go.
type rpcMetrics struct {
	started, handled, received, sent *prometheus.CounterVec
	seconds                          *prometheus.HistogramVec

	mu      sync.Mutex
	methods atomic.Pointer[map[string]*methodMetrics] // copied on write
}

// methodMetrics are one method's series.
type methodMetrics struct {
	started, received, sent prometheus.Counter
	seconds                 prometheus.Observer
	handled                 [codes.Unauthenticated + 1]prometheus.Counter
	labels                  []string // type, service, method
	vec                     *prometheus.CounterVec
}

type rpcHelp struct{ started, handled, received, sent, seconds string }

var serverHelp = rpcHelp{
	started:  "Total number of RPCs started on the server.",
	handled:  "Total number of RPCs completed on the server, regardless of success or failure.",
	received: "Total number of RPC stream messages received on the server.",
	sent:     "Total number of gRPC stream messages sent by the server.",
	seconds:  "Histogram of response latency (seconds) of gRPC that had been application-level handled by the server.",
}

var clientHelp = rpcHelp{
	started:  "Total number of RPCs started on the client.",
	handled:  "Total number of RPCs completed by the client, regardless of success or failure.",
	received: "Total number of RPC stream messages received by the client.",
	sent:     "Total number of gRPC stream messages sent by the client.",
	seconds:  "Histogram of response latency (seconds) of the gRPC until it is finished by the application.",
}

// newRPCMetrics registers prefix's (grpc_server or grpc_client) series in
// reg, or takes the ones already there.
func newRPCMetrics(reg prometheus.Registerer, prefix string, help rpcHelp) *rpcMetrics {
	labels := []string{"grpc_type", "grpc_service", "grpc_method"}
	counter := func(name, help string, labels ...string) *prometheus.CounterVec {
		return Register(reg, prometheus.NewCounterVec(prometheus.CounterOpts{Name: prefix + name, Help: help}, labels))
	}
	m := &rpcMetrics{
		started:  counter("_started_total", help.started, labels...),
		handled:  counter("_handled_total", help.handled, append(labels, "grpc_code")...),
		received: counter("_msg_received_total", help.received, labels...),
		sent:     counter("_msg_sent_total", help.sent, labels...),
		seconds: Register(reg, prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: prefix + "_handling_seconds", Help: help.seconds, Buckets: LatencyBuckets,
		}, labels)),
	}
	m.methods.Store(&map[string]*methodMetrics{})
	return m
}

// method returns fullMethod's series, creating them (every code at zero)
// on its first call. Methods are the registered ones on a server and the
// ones the code calls on a client: a fixed set.
func (m *rpcMetrics) method(fullMethod, typ string) *methodMetrics {
	if mm, ok := (*m.methods.Load())[fullMethod]; ok {
		return mm
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	old := *m.methods.Load()
	if mm, ok := old[fullMethod]; ok {
		return mm
	}
	service, name, _ := strings.Cut(strings.TrimPrefix(fullMethod, "/"), "/")
	mm := &methodMetrics{labels: []string{typ, service, name}, vec: m.handled}
	mm.started = m.started.WithLabelValues(mm.labels...)
	mm.received = m.received.WithLabelValues(mm.labels...)
	mm.sent = m.sent.WithLabelValues(mm.labels...)
	mm.seconds = m.seconds.WithLabelValues(mm.labels...)
	for code := range mm.handled {
		mm.handled[code] = m.handled.WithLabelValues(typ, service, name, codes.Code(code).String())
	}
	methods := make(map[string]*methodMetrics, len(old)+1)
	for k, v := range old {
		methods[k] = v
	}
	methods[fullMethod] = mm
	m.methods.Store(&methods)
	return mm
}

// done records the end of a call with err after elapsed, and its messages.
func (mm *methodMetrics) done(err error, elapsed time.Duration, received, sent int) {
	// A context error that is not a status yet counts as gRPC would send
	// it, Canceled or DeadlineExceeded, as the provider counts it.
	st, ok := status.FromError(err)
	if !ok {
		st = status.FromContextError(err)
	}
	code := st.Code()
	if int(code) < len(mm.handled) {
		mm.handled[code].Inc()
	} else {
		mm.vec.WithLabelValues(append(mm.labels, code.String())...).Inc()
	}
	mm.seconds.Observe(elapsed.Seconds())
	if received > 0 {
		mm.received.Add(float64(received))
	}
	if sent > 0 {
		mm.sent.Add(float64(sent))
	}
}

func callType(clientStreams, serverStreams bool) string {
	switch {
	case !clientStreams && !serverStreams:
		// A unary method, or a unary call made on a stream.
		return "unary"
	case clientStreams && !serverStreams:
		return "client_stream"
	case !clientStreams && serverStreams:
		return "server_stream"
	}
	return "bidi_stream"
}

// initialize creates every registered method's series at zero, so that
// rate() works from the first scrape.
func (m *rpcMetrics) initialize(s *grpc.Server) {
	for service, info := range s.GetServiceInfo() {
		for _, mi := range info.Methods {
			m.method("/"+service+"/"+mi.Name, callType(mi.IsClientStream, mi.IsServerStream))
		}
	}
}

func (m *rpcMetrics) unaryServer(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	mm := m.method(info.FullMethod, "unary")
	mm.started.Inc()
	start := time.Now()
	resp, err := handler(ctx, req)
	sent := 0
	if err == nil {
		sent = 1
	}
	mm.done(err, time.Since(start), 1, sent)
	return resp, err
}

func (m *rpcMetrics) streamServer(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	mm := m.method(info.FullMethod, callType(info.IsClientStream, info.IsServerStream))
	mm.started.Inc()
	start := time.Now()
	counted := &countedServerStream{ServerStream: ss}
	err := handler(srv, counted)
	mm.done(err, time.Since(start), counted.received, counted.sent)
	return err
}

// countedServerStream counts the messages of one stream; only its handler's
// goroutine sends and receives, so the counts need no lock.
type countedServerStream struct {
	grpc.ServerStream
	received, sent int
}

func (s *countedServerStream) SendMsg(msg any) error {
	err := s.ServerStream.SendMsg(msg)
	if err == nil {
		s.sent++
	}
	return err
}

func (s *countedServerStream) RecvMsg(msg any) error {
	err := s.ServerStream.RecvMsg(msg)
	if err == nil {
		s.received++
	}
	return err
}

func (m *rpcMetrics) unaryClient(ctx context.Context, method string, req, reply any, cc *grpc.ClientConn, invoker grpc.UnaryInvoker, opts ...grpc.CallOption) error {
	mm := m.method(method, "unary")
	mm.started.Inc()
	start := time.Now()
	err := invoker(ctx, method, req, reply, cc, opts...)
	received := 0
	if err == nil {
		received = 1
	}
	mm.done(err, time.Since(start), received, 1)
	return err
}

func (m *rpcMetrics) streamClient(ctx context.Context, desc *grpc.StreamDesc, cc *grpc.ClientConn, method string, streamer grpc.Streamer, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	mm := m.method(method, callType(desc.ClientStreams, desc.ServerStreams))
	mm.started.Inc()
	start := time.Now()
	cs, err := streamer(ctx, desc, cc, method, opts...)
	if err != nil {
		mm.done(err, time.Since(start), 0, 0)
		return nil, err
	}
	return &countedClientStream{ClientStream: cs, mm: mm, start: start, serverStreams: desc.ServerStreams}, nil
}

// countedClientStream counts a stream's messages and records the call when
// its reader learns how it ended, as the provider does: a stream its caller
// abandons is not recorded.
type countedClientStream struct {
	grpc.ClientStream
	mm             *methodMetrics
	start          time.Time
	serverStreams  bool
	received, sent int
	ended          bool
}

func (s *countedClientStream) SendMsg(msg any) error {
	err := s.ClientStream.SendMsg(msg)
	if err == nil {
		s.sent++
	}
	return err
}

func (s *countedClientStream) RecvMsg(msg any) error {
	err := s.ClientStream.RecvMsg(msg)
	if err == nil {
		s.received++
		if s.serverStreams {
			return nil
		}
	}
	if s.ended {
		return err
	}
	s.ended = true
	callErr := err
	if errors.Is(err, io.EOF) {
		callErr = nil
	}
	s.mm.done(callErr, time.Since(s.start), s.received, s.sent)
	return err
}
