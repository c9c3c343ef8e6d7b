package client_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/client"
)

// startBackend serves the real backend on a free loopback port, as
// `grpcplay backend` would on :50051, and returns its address and how to
// stop it.
func startBackend() (addr string, stop func()) {
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		log.Fatal(err)
	}
	srv := backend.New(backend.DefaultConfig)
	served := make(chan error, 1)
	go func() { served <- srv.Serve(lis) }()
	return lis.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		if err := <-served; err != nil {
			log.Fatal(err)
		}
	}
}

// connect is ExampleNew's client of a backend started for the example,
// and how to close both.
func connect() (*client.Client, func()) {
	addr, stopBackend := startBackend()
	c, err := client.New(addr)
	if err != nil {
		log.Fatal(err)
	}
	return c, func() {
		c.Close()
		stopBackend()
	}
}

// New connects once; every call then shares that connection. A target
// with several addresses, such as "dns:///backend:50051", spreads the calls
// over all of them.
func ExampleNew() {
	addr, stop := startBackend()
	defer stop()

	c, err := client.New(addr, client.WithTimeout(3*time.Second))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Ready(context.Background()); err != nil {
		log.Fatal(err)
	}
	fmt.Println("connected")
	// Output: connected
}

func ExampleClient_SayHello() {
	c, stop := connect()
	defer stop()

	// The context has no deadline, so the client's default applies.
	msg, err := c.SayHello(context.Background(), "Gonzalo")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg)
	// Output: Hello Gonzalo!
}

func ExampleClient_GetAll() {
	c, stop := connect()
	defer stop()

	items, err := c.GetAll(context.Background(), 3)
	if err != nil {
		log.Fatal(err)
	}
	for _, it := range items {
		fmt.Println(it.GetId(), it.GetName())
	}
	// Output:
	// 1 name 1
	// 2 name 2
	// 3 name 3
}

// GetStream yields each item as it arrives; an error, if any, comes last.
// Leaving the loop early cancels the stream on the server too.
func ExampleClient_GetStream() {
	c, stop := connect()
	defer stop()

	for it, err := range c.GetStream(context.Background(), 1000) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(it.GetId(), it.GetName())
		if it.GetId() == 2 {
			break
		}
	}
	// Output:
	// 1 name 1
	// 2 name 2
}

// A caller that needs several replies makes the calls on goroutines of
// their own: they share the one connection and wait one round trip, not
// one each.
func Example_concurrentCalls() {
	c, stop := connect()
	defer stop()

	var msg string
	var all []*client.Item
	g, ctx := errgroup.WithContext(context.Background())
	g.Go(func() (err error) { msg, err = c.SayHello(ctx, "Gonzalo"); return err })
	g.Go(func() (err error) { all, err = c.GetAll(ctx, 2); return err })
	if err := g.Wait(); err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg, len(all), "items")
	// Output: Hello Gonzalo! 2 items
}
