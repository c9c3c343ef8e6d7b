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
}

func (d *countingDialer) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	var nd net.Dialer
	conn, err := nd.DialContext(ctx, network, addr)
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
	grpc      *client.Client
	grpcWire  *countingDialer
	restURL   string
	rest      *http.Client
	restWire  *countingDialer
	close     *http.Client
	closeWire *countingDialer
}

func newClients(grpcTarget, restURL string, maxConcurrency int) (*clients, error) {
	cs := &clients{grpcWire: &countingDialer{}, restWire: &countingDialer{}, closeWire: &countingDialer{}, restURL: strings.TrimSuffix(restURL, "/")}
	if grpcTarget != "" {
		// One connection for every worker, as a service would use gRPC.
		c, err := client.New(grpcTarget, client.WithDialOptions(grpc.WithContextDialer(func(ctx context.Context, addr string) (net.Conn, error) {
			return cs.grpcWire.dial(ctx, "tcp", addr)
		})))
		if err != nil {
			return nil, fmt.Errorf("gRPC target %q: %w", grpcTarget, err)
		}
		cs.grpc = c
	}
	// HTTP/1.1, JSON, one connection per concurrent worker kept open between
	// calls: what a Go service calling a REST API does by default.
	cs.rest = &http.Client{Transport: &http.Transport{
		DialContext:         cs.restWire.dial,
		MaxIdleConns:        maxConcurrency,
		MaxIdleConnsPerHost: maxConcurrency,
		IdleConnTimeout:     time.Minute,
	}}
	// The post's "open and close" model: a new TCP connection for each call.
	cs.close = &http.Client{Transport: &http.Transport{
		DialContext:       cs.closeWire.dial,
		DisableKeepAlives: true,
	}}
	return cs, nil
}

func (cs *clients) Close() error {
	cs.rest.CloseIdleConnections()
	cs.close.CloseIdleConnections()
	if cs.grpc != nil {
		return cs.grpc.Close()
	}
	return nil
}

// wire returns the byte counter of a transport.
func (cs *clients) wire(transport string) *countingDialer {
	switch transport {
	case TransportGRPC:
		return cs.grpcWire
	case TransportREST:
		return cs.restWire
	default:
		return cs.closeWire
	}
}

// grpcPrefix is the length-prefix gRPC puts before each message.
const grpcPrefix = 5

// helloName is the name every sayHello of the bench sends.
const helloName = "bench"

func (cs *clients) call(c Case) call {
	if c.Transport == TransportGRPC {
		return cs.grpcCall(c)
	}
	hc := cs.rest
	if c.Transport == TransportRESTClose {
		hc = cs.close
	}
	return restCall(hc, cs.restURL, c)
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

func restCall(hc *http.Client, base string, c Case) call {
	var url string
	switch c.Method {
	case MethodHello:
		url = base + "/v1/hello?name=" + helloName
	case MethodItems:
		url = base + "/v1/items?length=" + strconv.Itoa(int(c.Length))
	default:
		url = base + "/v1/stream?length=" + strconv.Itoa(int(c.Length))
	}
	want := int(c.Length)
	return func(ctx context.Context, _ bool, received *atomic.Int64) (int, int64, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return 0, 0, err
		}
		// Pass the deadline on as the gRPC client does, so that both
		// servers give a call the same time.
		if d, ok := ctx.Deadline(); ok {
			req.Header.Set("Grpc-Timeout", strconv.FormatInt(max(time.Until(d).Milliseconds(), 1), 10)+"m")
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, 0, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return 0, 0, fmt.Errorf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
		}
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
		if c.Method == MethodHello {
			var h jsonHello
			if err := json.Unmarshal(buf.Bytes(), &h); err != nil {
				return 0, body, err
			}
			if h.Message == "" {
				return 0, body, errors.New("empty greeting")
			}
			received.Add(1)
			return 1, body, nil
		}
		var items jsonItems
		if err := json.Unmarshal(buf.Bytes(), &items); err != nil {
			return 0, body, err
		}
		if len(items.Items) != want {
			return 0, body, fmt.Errorf("/v1/items returned %d items, want %d", len(items.Items), want)
		}
		received.Add(int64(want))
		return want, body, nil
	}
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
