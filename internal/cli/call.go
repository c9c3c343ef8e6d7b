package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/client"
)

// callCmd is `grpcplay call`: one call to a backend, printed as text, or as
// JSON in the same protobuf JSON mapping grpcurl uses; a stream prints one
// line per item as it arrives.
type callCmd struct {
	target  string
	timeout time.Duration
	output  string
	args    []string
	client  clientFlags
}

func (c *callCmd) define(fs *flag.FlagSet, getenv func(string) string) {
	targetFlag(fs, &c.target, getenv)
	fs.DurationVar(&c.timeout, "timeout", 10*time.Second, "deadline of the call")
	fs.StringVar(&c.output, "o", "text", "output format: text or json")
	c.client.define(fs, "the backend")
}

func (c *callCmd) argsUsage() string     { return "hello NAME | items N | stream N" }
func (c *callCmd) setArgs(args []string) { c.args = args }

func (c *callCmd) validate(func(string) string) []error {
	errs := positive("timeout", c.timeout)
	if err := c.client.load(); err != nil {
		errs = append(errs, err)
	}
	return errs
}

func (c *callCmd) run(ctx context.Context, m *Main) error {
	method, length, err := c.parseCall()
	if err != nil {
		return err
	}
	cl, err := client.New(c.target, append(c.client.options(), client.WithTimeout(c.timeout), client.WithStreamTimeout(c.timeout))...)
	if err != nil {
		return fmt.Errorf("backend target %q: %w", c.target, err)
	}
	defer cl.Close()
	switch method {
	case "hello":
		return c.hello(ctx, cl, m.Stdout)
	case "items":
		return c.items(ctx, cl, length, m.Stdout)
	case "stream":
		return c.stream(ctx, cl, length, m.Stdout)
	}
	return fmt.Errorf("%w: unknown call %q: want hello, items or stream", errUsage, method)
}

// parseCall checks the output format and the call's two arguments.
func (c *callCmd) parseCall() (method string, length int32, err error) {
	if c.output != "text" && c.output != "json" {
		return "", 0, fmt.Errorf("%w: -o must be text or json, not %q", errUsage, c.output)
	}
	if len(c.args) != 2 {
		return "", 0, fmt.Errorf("%w: want hello NAME, items N or stream N; got %q", errUsage, c.args)
	}
	method = c.args[0]
	if method == "items" || method == "stream" {
		n, err := parseInt32(c.args[1])
		if err != nil {
			return "", 0, fmt.Errorf("%w: length %v", errUsage, err)
		}
		length = n
	}
	return method, length, nil
}

func (c *callCmd) hello(ctx context.Context, cl *client.Client, w io.Writer) error {
	msg, err := cl.SayHello(ctx, c.args[1])
	if err != nil {
		return c.client.callError(c.target, err)
	}
	if c.output == "text" {
		_, err = fmt.Fprintln(w, msg)
		return err
	}
	return printJSON(w, &api.Hello{Message: msg})
}

// items prints getAll's reply: as one JSON message, or a line per item.
func (c *callCmd) items(ctx context.Context, cl *client.Client, length int32, w io.Writer) error {
	items, err := cl.GetAll(ctx, length)
	if err != nil {
		return c.client.callError(c.target, err)
	}
	if c.output == "json" {
		return printJSON(w, &api.Items{Items: items})
	}
	for _, it := range items {
		if err := c.print(w, it); err != nil {
			return err
		}
	}
	return nil
}

// stream prints getStream's items as they arrive, one line each.
func (c *callCmd) stream(ctx context.Context, cl *client.Client, length int32, w io.Writer) error {
	for it, err := range cl.GetStream(ctx, length) {
		if err != nil {
			return c.client.callError(c.target, err)
		}
		if err := c.print(w, it); err != nil {
			return err
		}
	}
	return nil
}

// print writes one item as a line of text or of JSON.
func (c *callCmd) print(w io.Writer, it *api.Item) error {
	if c.output == "json" {
		return printJSON(w, it)
	}
	return printItem(w, it)
}

func printItem(w io.Writer, it *api.Item) error {
	_, err := fmt.Fprintf(w, "%d\t%s\n", it.GetId(), it.GetName())
	return err
}

// printJSON compacts protojson's output, whose spacing is deliberately
// unstable, so that scripts can compare it byte for byte.
func printJSON(w io.Writer, msg proto.Message) error {
	b, err := protojson.Marshal(msg)
	if err != nil {
		return err
	}
	var out bytes.Buffer
	if err := json.Compact(&out, b); err != nil {
		return err
	}
	out.WriteByte('\n')
	_, err = out.WriteTo(w)
	return err
}

// callError shows a gRPC error as its code and message, without the
// "rpc error: code = ... desc = ..." wrapping.
func callError(err error) error {
	s := status.Convert(err)
	return fmt.Errorf("%s: %s", s.Code(), s.Message())
}
