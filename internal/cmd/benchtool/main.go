// Command benchtool is what scripts/bench-vs-bare and scripts/callgrind-vs-bare
// need besides the servers: a bare grpc-go server of our own (the baseline
// when no peer servers are given, as on a fresh CI machine), the floor page
// (the post's Flask page with net/http and grpc-go alone, to show how far a
// Go page leads Flask before it adds anything), a typed gRPC load client,
// and an HTTP load loop for the page. Its loops are bench's
// workers and histogram; the gRPC client keeps grpc-go's standard codec on
// purpose, so that it loads grpcplay and the bare servers alike. Every load
// is bounded by a duration or a call count and prints one JSON line.
//
//	benchtool bare-server -addr 127.0.0.1:0
//	benchtool floor-page -addr 127.0.0.1:0 -backend ADDR
//	benchtool grpc-load -target ADDR -method sayHello|getAll|getStream -length N -c C -warmup D (-d D | -n N)
//	benchtool http-load -url URL -c C -warmup D -timeout D (-d D | -n N)
//	benchtool free-port
//	benchtool wait -grpc ADDR | -http URL [-timeout D]
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/bench"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchtool bare-server|floor-page|grpc-load|http-load|free-port|wait [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "bare-server":
		err = bareServer(os.Args[2:])
	case "grpc-load":
		err = grpcLoad(os.Args[2:])
	case "http-load":
		err = httpLoad(os.Args[2:])
	case "floor-page":
		err = floorPage(os.Args[2:])
	case "free-port":
		err = freePort()
	case "wait":
		err = wait(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "benchtool:", err)
		os.Exit(1)
	}
}

// bareServer serves the same Service with grpc-go's defaults: no options, no
// interceptors, the standard codec and the struct-building handlers.
func bareServer(args []string) error {
	fs := flag.NewFlagSet("bare-server", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:50052", "listen address")
	_ = fs.Parse(args)
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	api.RegisterApiServer(srv, backend.NewService(backend.DefaultLimits))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		srv.Stop()
	}()
	return srv.Serve(lis)
}

// result is one load run, in the fields of the peers' grpcload, so that the
// script reads either.
type result struct {
	Target    string  `json:"target"`
	Method    string  `json:"method"`
	Length    int     `json:"length"`
	C         int     `json:"concurrency"`
	Calls     int64   `json:"calls"`
	Errors    int64   `json:"errors"`
	FirstErr  string  `json:"first_error,omitempty"`
	Items     int64   `json:"items"`
	Seconds   float64 `json:"seconds"`
	CallsPerS float64 `json:"calls_per_s"`
	ItemsPerS float64 `json:"items_per_s"`
	P50ms     float64 `json:"p50_ms"`
	P99ms     float64 `json:"p99_ms"`
}

// load is how long or how much a load runs: a warm-up left out of the
// figures, then either a duration or a fixed number of calls (what
// instruction counts need, since they must not depend on the machine's
// speed).
type load struct {
	c      int
	warmup time.Duration
	d      time.Duration
	n      int64
}

func (l *load) flags(fs *flag.FlagSet) {
	fs.IntVar(&l.c, "c", 1, "concurrent workers")
	fs.DurationVar(&l.warmup, "warmup", 0, "unmeasured warm-up")
	fs.DurationVar(&l.d, "d", 10*time.Second, "measured duration (when -n is 0)")
	fs.Int64Var(&l.n, "n", 0, "if > 0: make exactly n calls, shared by the workers, instead of running for -d")
}

// run calls call as l says and summarises the measured calls with bench's
// workers and histogram.
func (l load) run(call func() (int64, error)) result {
	if l.warmup > 0 {
		bench.RunWorkers(l.c, time.Now().Add(l.warmup), 0, call)
	}
	var until time.Time
	if l.n <= 0 {
		until = time.Now().Add(l.d)
	}
	start := time.Now()
	w := bench.RunWorkers(l.c, until, l.n, call)
	res := result{C: l.c, Seconds: time.Since(start).Seconds(), Calls: w.Calls, Items: w.Items, Errors: w.Errors}
	if w.FirstErr != nil {
		res.FirstErr = w.FirstErr.Error()
	}
	res.P50ms = float64(w.Hist.Quantile(0.50)) / 1e6
	res.P99ms = float64(w.Hist.Quantile(0.99)) / 1e6
	res.CallsPerS = float64(res.Calls) / res.Seconds
	res.ItemsPerS = float64(res.Items) / res.Seconds
	return res
}

func grpcLoad(args []string) error {
	fs := flag.NewFlagSet("grpc-load", flag.ExitOnError)
	target := fs.String("target", "127.0.0.1:50052", "host:port")
	method := fs.String("method", "sayHello", "sayHello | getAll | getStream")
	length := fs.Int("length", 10, "ApiRequest.length")
	timeout := fs.Duration("timeout", 20*time.Second, "deadline of each call")
	var l load
	l.flags(fs)
	_ = fs.Parse(args)
	// The standard codec, like the peers' grpcload: the load client must be
	// the same for every server, and not grpcplay's.
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := api.NewApiClient(conn)
	call := func() (int64, error) {
		ctx, cancel := context.WithTimeout(context.Background(), *timeout)
		defer cancel()
		switch *method {
		case "sayHello":
			_, err := client.SayHello(ctx, &api.HelloRequest{Name: "Gonzalo"})
			return 0, err
		case "getAll":
			reply, err := client.GetAll(ctx, &api.ApiRequest{Length: int32(*length)})
			return int64(len(reply.GetItems())), err
		case "getStream":
			stream, err := client.GetStream(ctx, &api.ApiRequest{Length: int32(*length)})
			if err != nil {
				return 0, err
			}
			var n int64
			for {
				_, err := stream.Recv()
				if errors.Is(err, io.EOF) {
					return n, nil
				}
				if err != nil {
					return n, err
				}
				n++
			}
		}
		return 0, fmt.Errorf("unknown method %q", *method)
	}
	res := l.run(call)
	res.Target, res.Method, res.Length = *target, *method, *length
	return json.NewEncoder(os.Stdout).Encode(res)
}

func httpLoad(args []string) error {
	fs := flag.NewFlagSet("http-load", flag.ExitOnError)
	url := fs.String("url", "http://127.0.0.1:5000/", "page to GET")
	timeout := fs.Duration("timeout", 10*time.Second, "deadline of each call")
	var l load
	l.flags(fs)
	_ = fs.Parse(args)
	hc := &http.Client{
		Timeout:   *timeout,
		Transport: &http.Transport{MaxIdleConnsPerHost: l.c, MaxConnsPerHost: l.c},
	}
	defer hc.CloseIdleConnections()
	call := func() (int64, error) {
		resp, err := hc.Get(*url)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return 0, err
		}
		if resp.StatusCode != http.StatusOK {
			return 0, fmt.Errorf("GET %s: %s", *url, resp.Status)
		}
		return 0, nil
	}
	res := l.run(call)
	res.Target, res.Method = *url, "GET"
	return json.NewEncoder(os.Stdout).Encode(res)
}

// freePort prints a loopback port that was free a moment ago.
func freePort() error {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer lis.Close()
	fmt.Println(lis.Addr().(*net.TCPAddr).Port)
	return nil
}

// wait returns once a gRPC server answers sayHello or a URL answers 200,
// or fails when timeout passes first.
func wait(args []string) error {
	fs := flag.NewFlagSet("wait", flag.ExitOnError)
	grpcAddr := fs.String("grpc", "", "gRPC address that must answer sayHello")
	url := fs.String("http", "", "URL that must answer 200")
	timeout := fs.Duration("timeout", 30*time.Second, "how long to wait")
	_ = fs.Parse(args)
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	check := func(ctx context.Context) error { return errors.New("nothing to wait for") }
	if *grpcAddr != "" {
		conn, err := grpc.NewClient(*grpcAddr, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if err != nil {
			return err
		}
		defer conn.Close()
		client := api.NewApiClient(conn)
		check = func(ctx context.Context) error {
			_, err := client.SayHello(ctx, &api.HelloRequest{Name: "wait"})
			return err
		}
	} else if *url != "" {
		check = func(ctx context.Context) error {
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, *url, nil)
			if err != nil {
				return err
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return err
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return errors.New(resp.Status)
			}
			return nil
		}
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		// A server under valgrind may take seconds to answer its first
		// call; one that is not up yet refuses at once.
		attempt, cancelAttempt := context.WithTimeout(ctx, 10*time.Second)
		err := check(attempt)
		cancelAttempt()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %w", *timeout, err)
		case <-tick.C:
		}
	}
}
