package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"golang.org/x/sync/semaphore"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/gateway"
)

// plainREST is REST as a Go team would write it without grpc-gateway:
// net/http's ServeMux and encoding/json over the generated structs, calling
// the same api.ApiServer methods as the gRPC and gateway faces, so that
// "JSON is slow" is measured on encoding/json too, not on protojson alone.
// It exists in the bench only. It keeps the gateway's admission limits
// (requests and streams in flight, getAll's reply-item budget) and its
// deadlines (Grpc-Timeout, capped, or the default of the kind of call), and
// answers errors with the gateway's status codes and body; it does not cut
// slow stream readers, which the bench never is.
type plainREST struct {
	cfg        gateway.Config
	svc        api.ApiServer
	inFlight   chan struct{}
	streams    chan struct{}
	replyItems *semaphore.Weighted
	mux        *http.ServeMux
}

// newPlainREST serves svc with cfg's limits; zero fields take the gateway's
// defaults.
func newPlainREST(cfg gateway.Config, svc api.ApiServer) *plainREST {
	def := gateway.DefaultConfig
	for _, f := range []struct{ v, d *int }{{&cfg.MaxInFlight, &def.MaxInFlight}, {&cfg.MaxStreams, &def.MaxStreams}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	for _, f := range []struct{ v, d *time.Duration }{{&cfg.Timeout, &def.Timeout}, {&cfg.StreamTimeout, &def.StreamTimeout}, {&cfg.MaxTimeout, &def.MaxTimeout}} {
		if *f.v == 0 {
			*f.v = *f.d
		}
	}
	if cfg.MaxReplyItems == 0 {
		cfg.MaxReplyItems = def.MaxReplyItems
	}
	p := &plainREST{
		cfg: cfg, svc: svc,
		inFlight:   make(chan struct{}, cfg.MaxInFlight),
		streams:    make(chan struct{}, cfg.MaxStreams),
		replyItems: semaphore.NewWeighted(cfg.MaxReplyItems),
		mux:        http.NewServeMux(),
	}
	p.mux.HandleFunc("GET /v1/hello", p.hello)
	p.mux.HandleFunc("GET /v1/items", p.items)
	p.mux.HandleFunc("GET /v1/stream", p.stream)
	return p
}

func (p *plainREST) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	select {
	case p.inFlight <- struct{}{}:
		defer func() { <-p.inFlight }()
	default:
		p.fail(w, status.Errorf(codes.ResourceExhausted, "too many requests in flight (the limit is %d); retry later", p.cfg.MaxInFlight))
		return
	}
	timeout := p.cfg.Timeout
	if r.URL.Path == "/v1/stream" {
		timeout = p.cfg.StreamTimeout
	}
	if v := r.Header.Get("Grpc-Timeout"); v != "" {
		asked, err := parseGRPCTimeout(v)
		if err != nil {
			p.fail(w, status.Error(codes.InvalidArgument, err.Error()))
			return
		}
		timeout = min(asked, p.cfg.MaxTimeout)
	}
	ctx, cancel := context.WithTimeout(r.Context(), timeout)
	defer cancel()
	p.mux.ServeHTTP(w, r.WithContext(ctx))
}

func (p *plainREST) hello(w http.ResponseWriter, r *http.Request) {
	reply, err := p.svc.SayHello(r.Context(), &api.HelloRequest{Name: r.URL.Query().Get("name")})
	p.reply(w, reply, err)
}

func (p *plainREST) items(w http.ResponseWriter, r *http.Request) {
	n, err := lengthParam(r)
	if err != nil {
		p.fail(w, err)
		return
	}
	// The gateway's budget: the items being made and marshalled at once.
	held := min(max(int64(n), 1), p.cfg.MaxReplyItems)
	if err := p.replyItems.Acquire(r.Context(), held); err != nil {
		p.fail(w, status.FromContextError(err).Err())
		return
	}
	reply, err := p.svc.GetAll(r.Context(), &api.ApiRequest{Length: n})
	var body []byte
	if err == nil {
		body, err = json.Marshal(reply)
	}
	p.replyItems.Release(held)
	if err != nil {
		p.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// A final newline, as the gateway ends its replies.
	w.Write(append(body, '\n'))
}

func (p *plainREST) stream(w http.ResponseWriter, r *http.Request) {
	n, err := lengthParam(r)
	if err != nil {
		p.fail(w, err)
		return
	}
	select {
	case p.streams <- struct{}{}:
		defer func() { <-p.streams }()
	default:
		p.fail(w, status.Errorf(codes.ResourceExhausted, "too many streams open (the limit is %d); retry later", p.cfg.MaxStreams))
		return
	}
	out := &jsonLines{ctx: r.Context(), w: w, enc: json.NewEncoder(w)}
	err = p.svc.GetStream(&api.ApiRequest{Length: n}, out)
	switch {
	case err != nil && !out.started:
		p.fail(w, err)
	case err != nil:
		// The status is sent; the body says how the stream ended.
		s := status.Convert(err)
		_ = out.enc.Encode(map[string]any{"error": map[string]any{"code": s.Code(), "message": s.Message()}})
	}
}

// jsonLines is a grpc.ServerStreamingServer[api.Item] whose Send writes one
// line {"result":ITEM}, the gateway's format. The ResponseWriter buffers
// the lines; the first is flushed at once so that the reader sees the
// stream start.
type jsonLines struct {
	grpc.ServerStream // nil: only Context and Send are called
	ctx               context.Context
	w                 http.ResponseWriter
	enc               *json.Encoder
	started           bool
}

type itemLine struct {
	Result *api.Item `json:"result"`
}

func (s *jsonLines) Context() context.Context { return s.ctx }

func (s *jsonLines) Send(item *api.Item) error {
	if !s.started {
		s.w.Header().Set("Content-Type", "application/x-ndjson")
	}
	if err := s.enc.Encode(itemLine{Result: item}); err != nil {
		return status.Error(codes.Canceled, err.Error())
	}
	if !s.started {
		s.started = true
		if err := http.NewResponseController(s.w).Flush(); err != nil {
			return status.Error(codes.Canceled, err.Error())
		}
	}
	return nil
}

func (p *plainREST) reply(w http.ResponseWriter, reply any, err error) {
	var body []byte
	if err == nil {
		body, err = json.Marshal(reply)
	}
	if err != nil {
		p.fail(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	// A final newline, as the gateway ends its replies.
	w.Write(append(body, '\n'))
}

// fail answers as the gateway does: its status code for the gRPC code and
// a {"code","message"} body.
func (p *plainREST) fail(w http.ResponseWriter, err error) {
	s := status.Convert(err)
	if s.Code() == codes.ResourceExhausted {
		w.Header().Set("Retry-After", "1")
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(runtime.HTTPStatusFromCode(s.Code()))
	_ = json.NewEncoder(w).Encode(map[string]any{"code": s.Code(), "message": s.Message()})
}

func lengthParam(r *http.Request) (int32, error) {
	n, err := strconv.ParseInt(r.URL.Query().Get("length"), 10, 32)
	if err != nil {
		return 0, status.Errorf(codes.InvalidArgument, "length %q is not a 32-bit whole number", r.URL.Query().Get("length"))
	}
	return int32(n), nil
}

// parseGRPCTimeout reads gRPC's timeout header: digits and a unit, "100m".
func parseGRPCTimeout(v string) (time.Duration, error) {
	units := map[byte]time.Duration{'H': time.Hour, 'M': time.Minute, 'S': time.Second, 'm': time.Millisecond, 'u': time.Microsecond, 'n': time.Nanosecond}
	if len(v) < 2 || len(v) > 9 {
		return 0, fmt.Errorf("bad Grpc-Timeout %q", v)
	}
	unit, ok := units[v[len(v)-1]]
	n, err := strconv.ParseInt(v[:len(v)-1], 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, errors.New("bad Grpc-Timeout " + strconv.Quote(v))
	}
	return time.Duration(n) * unit, nil
}
