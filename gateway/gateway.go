// Package gateway is the REST/JSON face of api.Api: grpc-gateway, in-process,
// calling the same api.ApiServer as the gRPC backend with no network hop in
// between. It serves
//
//	GET /v1/hello?name=      sayHello
//	GET /v1/items?length=    getAll
//	GET /v1/stream?length=   getStream, as newline-delimited JSON
//	GET /v1/openapi.json     the OpenAPI document generated from api.proto
//
// and answers any other method with 405 and Allow: GET (see method.go).
// The HTTP rules live in api/gateway.yaml, so api.proto stays the post's.
package gateway

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/semaphore"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/api/apigw"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/clientlimit"
	"github.com/grpcplay/grpcplay/internal/connlimit"
	"github.com/grpcplay/grpcplay/internal/httpserver"
	"github.com/grpcplay/grpcplay/internal/settings"
)

// Config holds the gateway's settings. A zero field takes its default;
// a negative one is an error (Validate).
type Config struct {
	// Timeout is the deadline of a unary call (hello, items) whose request
	// has no Grpc-Timeout header (default 10s).
	Timeout time.Duration
	// StreamTimeout is the deadline of a stream without Grpc-Timeout
	// (default 5m).
	StreamTimeout time.Duration
	// MaxTimeout caps the Grpc-Timeout a client may ask for (default 5m), so
	// that no request can hold a goroutine longer than this.
	MaxTimeout time.Duration
	// MaxInFlight bounds the requests answered at once, streams included
	// (default 256); more get 429 RESOURCE_EXHAUSTED. See limit.go.
	MaxInFlight int
	// MaxStreams bounds the streams among them (default 128), so that
	// streams, which last minutes, leave slots to the short calls. Clients
	// (IP addresses) share them max-min fairly (clientlimit.Shares): a
	// client holding fewer than the others takes a slot from the largest
	// holder. Behind a proxy, name it in TrustedProxies.
	MaxStreams int
	// TrustedProxies are the peers whose X-Forwarded-For names the client
	// for the fair shares (none by default: see clientlimit.Proxies).
	TrustedProxies clientlimit.Proxies
	// SlowReader is the least rate a stream's reader must take its bytes
	// at (default clientlimit.DefaultMinRate, 32 KiB/s); a slower one is
	// cut, so that it frees its slot soon.
	SlowReader clientlimit.MinRate
	// ReplyWriteTimeout bounds the writing of a unary call's reply once it
	// is ready (default 15s), whatever the call's deadline (up to
	// MaxTimeout): a client that stops reading holds the reply's bytes and
	// its slot this long at most. 5s cut replies of 100,000 items (3.5 MB)
	// to bench's 50 readers on a loaded two-core machine.
	ReplyWriteTimeout time.Duration
	// MaxReplyItems bounds the items of the getAll replies being made or
	// written at once (default 1,000,000): a reply of 100,000 items takes
	// about 30 MB while it is made. A call over the budget waits for room
	// until its deadline. See limit.go.
	MaxReplyItems int64
	Logger        *slog.Logger // nil: discard
	// MaxConns caps the connections the listener holds open; at the cap,
	// a new one evicts an idle one, or is refused (see internal/connlimit).
	MaxConns int

	// Observability: each is off when nil. Metrics gets the
	// rest_* request metrics, TracerProvider a span per request.
	Metrics        *prometheus.Registry
	TracerProvider trace.TracerProvider
}

// DefaultConfig is what `grpcplay backend` and `grpcplay serve` run with:
// the same default deadlines as the client package.
var DefaultConfig = Config{
	Timeout:           client.DefaultTimeout,
	StreamTimeout:     client.DefaultStreamTimeout,
	MaxTimeout:        client.DefaultStreamTimeout,
	MaxInFlight:       256,
	MaxStreams:        128,
	SlowReader:        clientlimit.DefaultMinRate,
	MaxReplyItems:     1_000_000,
	ReplyWriteTimeout: 15 * time.Second,
	// An eighth of the descriptors, so that the four ports together leave
	// half to the process.
	MaxConns: connlimit.Share(8, 4096),
}

const (
	// writeMargin is the time, past a request's deadline, left to write its
	// error response.
	writeMargin = 5 * time.Second
)

func (c Config) withDefaults() Config {
	settings.Fill(&c, DefaultConfig)
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Server serves the REST/JSON face over HTTP.
type Server struct {
	cfg     Config
	svc     api.ApiServer
	log     *slog.Logger
	mux     *runtime.ServeMux
	handler http.Handler
	http    *http.Server
	// streamsCtx ends when Shutdown starts: a stream may run for minutes,
	// and http.Server.Shutdown would wait for it, while unary calls finish
	// within the grace period on their own.
	streamsCtx context.Context
	endStreams context.CancelFunc
	// streamSlots are the streams' slots, shared fairly by client.
	streamSlots *clientlimit.Shares
	inFlight    chan struct{}
	replyItems  *semaphore.Weighted
}

// New builds a Server whose routes call svc in-process.
func New(cfg Config, svc api.ApiServer) *Server {
	cfg = cfg.withDefaults()
	s := &Server{cfg: cfg, svc: svc, log: cfg.Logger}
	s.streamsCtx, s.endStreams = context.WithCancel(context.Background())
	s.streamSlots = clientlimit.NewShares(cfg.MaxStreams, cfg.TrustedProxies)
	s.streamSlots.Register(cfg.Metrics, "rest_stream")
	s.inFlight = make(chan struct{}, cfg.MaxInFlight)
	s.replyItems = semaphore.NewWeighted(cfg.MaxReplyItems)
	useStrictQuery()
	s.mux = runtime.NewServeMux(
		runtime.WithRoutingErrorHandler(routingError),
		runtime.WithErrorHandler(s.logErrors),
		runtime.WithForwardResponseOption(s.replyDeadline),
		runtime.WithMarshalerOption(runtime.MIMEWildcard, newCompactJSON()),
		// Clients that ask for protobuf (Accept: application/x-protobuf)
		// get the same messages in protobuf's binary form.
		runtime.WithMarshalerOption(protobufType, &vtProtoMarshaller{}),
	)
	// The generated in-process handlers cover the unary calls; their
	// getStream route answers Unimplemented, so it is replaced below.
	if err := apigw.RegisterApiHandlerServer(context.Background(), s.mux, checkedService{ApiServer: svc, s: s}); err != nil {
		panic(err) // only fails on a bad pattern, a build error
	}
	mustHandle(s.mux.HandlePath(http.MethodGet, streamPath, s.serveStream))
	mustHandle(s.mux.HandlePath(http.MethodGet, openAPIPath, serveOpenAPI))
	s.handler = s.observe(nosniff(s.getOnly(s.limited(s.withDeadline(s.budgeted(s.validUTF8(s.mux)))))))
	// The write timeout is a backstop only: each request sets its own write
	// deadline from its call's deadline, and a stream extends it write by
	// write.
	s.http = httpserver.New(s.handler, cfg.Timeout+writeMargin, cfg.Logger)
	s.http.RegisterOnShutdown(s.endStreams)
	return s
}

// protobufType is the media type of protobuf replies.
const protobufType = "application/x-protobuf"

// vtProtoMarshaller is grpc-gateway's protobuf marshaller with the gRPC
// face's encoder: vtprotobuf's MarshalVT for the API's messages, so that both
// faces encode the same message the same way. Errors (google.rpc.Status)
// have no VT methods and keep protobuf's.
type vtProtoMarshaller struct{ runtime.ProtoMarshaller }

func (m *vtProtoMarshaller) Marshal(v any) ([]byte, error) {
	if vt, ok := v.(interface{ MarshalVT() ([]byte, error) }); ok {
		return vt.MarshalVT()
	}
	return m.ProtoMarshaller.Marshal(v)
}

func mustHandle(err error) {
	if err != nil {
		panic(err)
	}
}

// Handler returns the gateway's routes, for tests or another http.Server.
func (s *Server) Handler() http.Handler {
	return s.handler
}

// Serve accepts connections on lis until Shutdown. It returns nil after a
// shutdown and the accept error otherwise.
func (s *Server) Serve(lis net.Listener) error {
	return httpserver.Serve(s.http, connlimit.New(lis, connlimit.Options{Max: s.cfg.MaxConns, Port: "rest", Metrics: s.cfg.Metrics}))
}

// Shutdown stops accepting connections, ends the streams in flight with a
// final UNAVAILABLE line and waits for the requests in flight. When ctx ends
// first, it closes every connection.
func (s *Server) Shutdown(ctx context.Context) error {
	err := httpserver.Shutdown(ctx, s.http, s.log, "grace period over; closing REST connections")
	s.endStreams()
	return err
}

const openAPIPath = "/v1/openapi.json"

func serveOpenAPI(w http.ResponseWriter, _ *http.Request, _ map[string]string) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(apigw.OpenAPI)
}
