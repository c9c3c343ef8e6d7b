package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/client"
)

// call makes one call of a case. It adds each item to received as it
// arrives (a stream's one by one, a reply's all at once), so that items/s
// counts the parts of streams that a case's end cuts through. It returns how
// many items came back and, when measure is set, the size of the response
// body: the protobuf messages with gRPC's 5-byte prefix each, or the JSON
// body.
type call func(ctx context.Context, measure bool, received *atomic.Int64) (items int, body int64, err error)

// countingDialer dials TCP and counts every byte the client reads from its
// connections: what the server sent on the wire, headers and framing
// included, less TCP/IP headers.
type countingDialer struct {
	read atomic.Int64
	next dialFunc // nil: a plain net.Dialer
}

// dialFunc dials a connection, as net.Dialer.DialContext does.
type dialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

func (d *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	dial := d.next
	if dial == nil {
		var nd net.Dialer
		dial = nd.DialContext
	}
	conn, err := dial(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: conn, read: &d.read}, nil
}

type countingConn struct {
	net.Conn
	read *atomic.Int64
}

func (c *countingConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	c.read.Add(int64(n))
	return n, err
}

// clients holds one client per transport, shared by every case of a run.
type clients struct {
	grpc     *client.Client
	grpcWire *countingDialer
	rest     map[string]*restClient
}

// restClient is the HTTP client of one REST transport.
type restClient struct {
	http  *http.Client
	wire  *countingDialer
	base  string
	proto bool // asks for application/x-protobuf instead of JSON
	http2 bool
}

// targets are the addresses a run's clients call.
type targets struct {
	grpc   string // gRPC host:port
	rest   string // base URL of the REST face over HTTP/1.1
	restH2 string // base URL of a REST face that speaks h2c too
	// restTLS is the base URL of the REST face over HTTPS, whose
	// certificate is certPEM.
	restTLS string
	certPEM []byte
	// restPlain is the base URL of the bench's plain net/http face.
	restPlain string
}

func newClients(t targets, maxConcurrency int, dial dialFunc) (*clients, error) {
	cs := &clients{grpcWire: &countingDialer{next: dial}, rest: map[string]*restClient{}}
	if t.grpc != "" {
		// One connection for every worker, as a service would use gRPC.
		c, err := client.New(t.grpc, client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return cs.grpcWire.dial(ctx, "tcp", addr)
		})))
		if err != nil {
			return nil, fmt.Errorf("gRPC target %q: %w", t.grpc, err)
		}
		cs.grpc = c
	}
	for _, name := range Transports[1:] {
		spec := transportSpecs[name]
		base := t.rest
		switch {
		case spec.http2:
			base = t.restH2
		case spec.tls:
			base = t.restTLS
		case spec.plain:
			base = t.restPlain
		}
		if base == "" {
			continue
		}
		wire := &countingDialer{next: dial}
		hc, err := spec.client(wire, maxConcurrency, t.certPEM)
		if err != nil {
			return nil, err
		}
		cs.rest[name] = &restClient{http: hc, wire: wire, base: strings.TrimSuffix(base, "/"), proto: spec.proto, http2: spec.http2}
	}
	return cs, nil
}

// transportSpec says how a REST transport carries its calls.
type transportSpec struct {
	http2 bool // h2c: HTTP/2 without TLS, every call a stream of one connection
	close bool // a new TCP connection for each call
	proto bool // protobuf bodies (application/x-protobuf)
	tls   bool // HTTPS, TLS 1.3
	plain bool // the bench's net/http + encoding/json face, not the gateway
}

var transportSpecs = map[string]transportSpec{
	TransportREST:         {},
	TransportRESTClose:    {close: true},
	TransportRESTH2:       {http2: true},
	TransportRESTProto:    {proto: true},
	TransportRESTH2Proto:  {http2: true, proto: true},
	TransportRESTCloseTLS: {close: true, tls: true},
	TransportRESTPlain:    {plain: true},
}

func (s transportSpec) client(wire *countingDialer, maxConcurrency int, certPEM []byte) (*http.Client, error) {
	t := &http.Transport{DialContext: wire.dial, IdleConnTimeout: time.Minute}
	if s.tls {
		cfg, err := clientTLS(certPEM)
		if err != nil {
			return nil, err
		}
		// No resumption cache: every call makes a full handshake, as a client
		// that opens and closes its connections without keeping state does.
		t.TLSClientConfig = cfg
	}
	switch {
	case s.close:
		// The post's "open and close" model: a new TCP connection per call.
		t.DisableKeepAlives = true
	case s.http2:
		t.Protocols = new(http.Protocols)
		t.Protocols.SetUnencryptedHTTP2(true)
	default:
		// HTTP/1.1, one connection per concurrent worker kept open between
		// calls: what a Go service calling a REST API does by default.
		t.MaxIdleConns, t.MaxIdleConnsPerHost = maxConcurrency, maxConcurrency
	}
	return &http.Client{Transport: t}, nil
}

func (cs *clients) Close() error {
	for _, rc := range cs.rest {
		rc.http.CloseIdleConnections()
	}
	if cs.grpc != nil {
		return cs.grpc.Close()
	}
	return nil
}

// wire returns the byte counter of a transport.
func (cs *clients) wire(transport string) *countingDialer {
	if transport == TransportGRPC {
		return cs.grpcWire
	}
	return cs.rest[transport].wire
}

// grpcPrefix is the length-prefix gRPC puts before each message.
const grpcPrefix = 5

// helloName is the name every sayHello of the bench sends.
const helloName = "bench"

func (cs *clients) call(c Case) call {
	if c.Transport == TransportGRPC {
		return cs.grpcCall(c)
	}
	return cs.rest[c.Transport].call(c)
}

func (cs *clients) grpcCall(c Case) call {
	g := cs.grpc
	n := c.Length
	switch c.Method {
	case MethodHello:
		return func(ctx context.Context, measure bool, received *atomic.Int64) (int, int64, error) {
			msg, err := g.SayHello(ctx, helloName)
			if err != nil {
				return 0, 0, err
			}
			if msg == "" {
				return 0, 0, errors.New("empty greeting")
			}
			received.Add(1)
			var body int64
			if measure {
				body = int64(proto.Size(&api.Hello{Message: msg}) + grpcPrefix)
			}
			return 1, body, nil
		}
	case MethodItems:
		return func(ctx context.Context, measure bool, received *atomic.Int64) (int, int64, error) {
			items, err := g.GetAll(ctx, n)
			if err != nil {
				return 0, 0, err
			}
			if len(items) != int(n) {
				return 0, 0, fmt.Errorf("getAll(%d) returned %d items", n, len(items))
			}
			received.Add(int64(len(items)))
			var body int64
			if measure {
				body = int64(proto.Size(&api.Items{Items: items}) + grpcPrefix)
			}
			return len(items), body, nil
		}
	default:
		return func(ctx context.Context, measure bool, received *atomic.Int64) (int, int64, error) {
			var got int
			var body int64
			for item, err := range g.GetStream(ctx, n) {
				if err != nil {
					return got, body, err
				}
				got++
				received.Add(1)
				if measure {
					body += int64(proto.Size(item) + grpcPrefix)
				}
			}
			if got != int(n) {
				return got, body, fmt.Errorf("getStream(%d) returned %d items", n, got)
			}
			return got, body, nil
		}
	}
}

// The JSON the REST face sends (protojson of the same messages). A Go
// service calling it would decode into structs like these.
type (
	jsonItem struct {
		ID   int32  `json:"id"`
		Name string `json:"name"`
	}
	jsonHello struct {
		Message string `json:"message"`
	}
	jsonItems struct {
		Items []jsonItem `json:"items"`
	}
	jsonStatus struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}
	jsonStreamLine struct {
		Result *jsonItem   `json:"result"`
		Error  *jsonStatus `json:"error"`
	}
)

var bufPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}

func (rc *restClient) call(c Case) call {
	var url string
	switch c.Method {
	case MethodHello:
		url = rc.base + "/v1/hello?name=" + helloName
	case MethodItems:
		url = rc.base + "/v1/items?length=" + strconv.Itoa(int(c.Length))
	default:
		url = rc.base + "/v1/stream?length=" + strconv.Itoa(int(c.Length))
	}
	want := int(c.Length)
	return func(ctx context.Context, _ bool, received *atomic.Int64) (int, int64, error) {
		resp, err := rc.get(ctx, url)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		if c.Method == MethodStream {
			return readStream(resp.Body, want, received)
		}
		buf := bufPool.Get().(*bytes.Buffer)
		defer bufPool.Put(buf)
		buf.Reset()
		body, err := buf.ReadFrom(resp.Body)
		if err != nil {
			return 0, body, err
		}
		got, err := rc.decode(c.Method, buf.Bytes(), want)
		if err != nil {
			return 0, body, err
		}
		received.Add(int64(got))
		return got, body, nil
	}
}

// protobufType is the media type the REST face answers protobuf for.
const protobufType = "application/x-protobuf"

// get sends the request and returns a 200 response, or the error.
func (rc *restClient) get(ctx context.Context, url string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if rc.proto {
		req.Header.Set("Accept", protobufType)
	}
	// Pass the deadline on as the gRPC client does, so that both
	// servers give a call the same time.
	if d, ok := ctx.Deadline(); ok {
		req.Header.Set("Grpc-Timeout", strconv.FormatInt(max(time.Until(d).Milliseconds(), 1), 10)+"m")
	}
	resp, err := rc.http.Do(req)
	if err != nil {
		return nil, err
	}
	if rc.http2 && resp.ProtoMajor != 2 {
		resp.Body.Close()
		return nil, fmt.Errorf("%s answered %s, not h2c", rc.base, resp.Proto)
	}
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return nil, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return resp, nil
}

// decode decodes a unary reply, JSON or protobuf, and checks it; it
// returns the number of items it holds (1 for a greeting). Protobuf is
// decoded with UnmarshalVT, as the gRPC client's codec does, so that the
// clients of gRPC and rest-proto pay the same for the same bytes.
func (rc *restClient) decode(method string, body []byte, want int) (int, error) {
	if method == MethodHello {
		var msg string
		if rc.proto {
			var h api.Hello
			if err := h.UnmarshalVT(body); err != nil {
				return 0, err
			}
			msg = h.Message
		} else {
			var h jsonHello
			if err := json.Unmarshal(body, &h); err != nil {
				return 0, err
			}
			msg = h.Message
		}
		if msg == "" {
			return 0, errors.New("empty greeting")
		}
		return 1, nil
	}
	var got int
	if rc.proto {
		var items api.Items
		if err := items.UnmarshalVT(body); err != nil {
			return 0, err
		}
		got = len(items.Items)
	} else {
		var items jsonItems
		if err := json.Unmarshal(body, &items); err != nil {
			return 0, err
		}
		got = len(items.Items)
	}
	if got != want {
		return 0, fmt.Errorf("/v1/items returned %d items, want %d", got, want)
	}
	return got, nil
}

// readStream reads newline-delimited JSON: one {"result":ITEM} per line and,
// on failure, a last {"error":STATUS} line.
func readStream(r io.Reader, want int, received *atomic.Int64) (int, int64, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	var got int
	var body int64
	for sc.Scan() {
		line := sc.Bytes()
		body += int64(len(line)) + 1
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var l jsonStreamLine
		if err := json.Unmarshal(line, &l); err != nil {
			return got, body, fmt.Errorf("stream line %d: %w", got+1, err)
		}
		if l.Error != nil {
			return got, body, fmt.Errorf("stream failed after %d items: %s", got, l.Error.Message)
		}
		if l.Result == nil {
			return got, body, fmt.Errorf("stream line %d has neither result nor error", got+1)
		}
		got++
		received.Add(1)
	}
	if err := sc.Err(); err != nil {
		return got, body, err
	}
	if got != want {
		return got, body, fmt.Errorf("/v1/stream returned %d items, want %d", got, want)
	}
	return got, body, nil
}

// Histogram is the bench's latency histogram, for load loops outside this
// package (internal/cmd/benchtool) that must report percentiles the same
// way.
type Histogram struct{ h histogram }

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) { h.h.record(d) }

// Merge adds o's latencies to h.
func (h *Histogram) Merge(o *Histogram) { h.h.merge(&o.h) }

// Quantile returns the latency that q (0..1) of the calls did not exceed.
func (h *Histogram) Quantile(q float64) time.Duration { return h.h.quantile(q) }

// Worker is one load goroutine's tally: successful calls with their
// latencies and items, and errors with the first of them.
type Worker struct {
	Calls, Errors, Items int64
	Hist                 Histogram
	FirstErr             error
}

// Measure makes one call and records its latency and items, or its error.
func (w *Worker) Measure(call func() (items int64, err error)) {
	start := time.Now()
	items, err := call()
	if err != nil {
		w.Errors++
		if w.FirstErr == nil {
			w.FirstErr = err
		}
		return
	}
	w.Hist.Record(time.Since(start))
	w.Calls++
	w.Items += items
}

// Add merges o's tally into w.
func (w *Worker) Add(o *Worker) {
	w.Calls += o.Calls
	w.Errors += o.Errors
	w.Items += o.Items
	w.Hist.Merge(&o.Hist)
	if w.FirstErr == nil {
		w.FirstErr = o.FirstErr
	}
}

// RunWorkers calls call from c goroutines and returns their merged tally.
// Each goroutine starts no new call once until is past (when it is not
// zero) or once n calls in all have been started (when n > 0), so that a
// load is bounded by a duration, a count, or both.
func RunWorkers(c int, until time.Time, n int64, call func() (items int64, err error)) Worker {
	workers := make([]Worker, c)
	var started atomic.Int64
	more := func() bool {
		if !until.IsZero() && !time.Now().Before(until) {
			return false
		}
		return n <= 0 || started.Add(1) <= n
	}
	var wg sync.WaitGroup
	for i := range workers {
		w := &workers[i]
		wg.Go(func() {
			for more() {
				w.Measure(call)
			}
		})
	}
	wg.Wait()
	var total Worker
	for i := range workers {
		total.Add(&workers[i])
	}
	return total
}
