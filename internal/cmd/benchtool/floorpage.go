package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/grpcplay/grpcplay/api"
)

// floorPage serves the post's Flask page with as little as a Go page of this
// proto can do: net/http and grpc-go with their defaults, the three calls in
// turn, and the Flask template's HTML written by hand, with no html/template,
// log line, metrics or headers of its own. It is not a page to deploy; it is
// what a real Go page is measured against: what net/http and grpc-go alone
// cost a page on this machine, before the page adds anything.
func floorPage(args []string) error {
	fs := flag.NewFlagSet("floor-page", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:5003", "listen address")
	target := fs.String("backend", "127.0.0.1:50051", "gRPC backend address")
	_ = fs.Parse(args)
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	lis, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           newFloorPage(api.NewApiClient(conn)),
		ReadHeaderTimeout: 5 * time.Second,
		IdleTimeout:       time.Minute,
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		_ = srv.Close()
	}()
	if err := srv.Serve(lis); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// floorPageTimeout bounds a page's three calls.
const floorPageTimeout = 5 * time.Second

func newFloorPage(c api.ApiClient) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), floorPageTimeout)
		defer cancel()
		page, err := renderFloorPage(ctx, c)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write(page)
	})
	return mux
}

// renderFloorPage makes the Flask app's calls, sayHello("Gonzalo"),
// getAll(10) and getStream(5), and writes what its template shows.
func renderFloorPage(ctx context.Context, c api.ApiClient) ([]byte, error) {
	hello, err := c.SayHello(ctx, &api.HelloRequest{Name: "Gonzalo"})
	if err != nil {
		return nil, fmt.Errorf("sayHello: %w", err)
	}
	all, err := c.GetAll(ctx, &api.ApiRequest{Length: 10})
	if err != nil {
		return nil, fmt.Errorf("getAll: %w", err)
	}
	stream, err := c.GetStream(ctx, &api.ApiRequest{Length: 5})
	if err != nil {
		return nil, fmt.Errorf("getStream: %w", err)
	}
	var streamed []*api.Item
	for {
		item, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("getStream: %w", err)
		}
		streamed = append(streamed, item)
	}
	b := make([]byte, 0, 1024)
	b = append(b, "<!doctype html>\n<html lang=\"en\">\n<head>\n    <title>Demo</title>\n</head>\n<body>\n<h1>"...)
	b = append(b, template.HTMLEscapeString(hello.GetMessage())...)
	b = append(b, "</h1>\n\n<p>getAll:</p>\n<ul>\n"...)
	b = appendItems(b, all.GetItems())
	b = append(b, "</ul>\n\n<p>getStream:</p>\n<ul>\n"...)
	b = appendItems(b, streamed)
	b = append(b, "</ul>\n</body>\n</html>\n"...)
	return b, nil
}

func appendItems(b []byte, items []*api.Item) []byte {
	for _, item := range items {
		b = append(b, "        <li>"...)
		b = strconv.AppendInt(b, int64(item.GetId()), 10)
		b = append(b, " - "...)
		b = append(b, template.HTMLEscapeString(item.GetName())...)
		b = append(b, "</li>\n"...)
	}
	return b
}
