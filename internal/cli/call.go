package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/client"
)

// runCall makes one call and prints its reply as text, or as JSON in the
// same protobuf JSON mapping grpcurl uses; a stream prints one line per item
// as it arrives.
func (m *Main) runCall(ctx context.Context) error {
	if m.output != "text" && m.output != "json" {
		return fmt.Errorf("%w: -o must be text or json, not %q", errUsage, m.output)
	}
	if len(m.callArgs) != 2 {
		return fmt.Errorf("%w: want hello NAME, items N or stream N; got %q", errUsage, m.callArgs)
	}
	method, arg := m.callArgs[0], m.callArgs[1]
	var length int32
	if method == "items" || method == "stream" {
		n, err := parseInt32(arg)
		if err != nil {
			return fmt.Errorf("%w: length %v", errUsage, err)
		}
		length = n
	}
	c, err := client.New(m.target, append(m.clientOptions(), client.WithTimeout(m.callTimeout), client.WithStreamTimeout(m.callTimeout))...)
	if err != nil {
		return fmt.Errorf("backend target %q: %w", m.target, err)
	}
	defer c.Close()

	switch method {
	case "hello":
		msg, err := c.SayHello(ctx, arg)
		if err != nil {
			return m.callError(err)
		}
		if m.output == "text" {
			_, err = fmt.Fprintln(m.Stdout, msg)
			return err
		}
		return printJSON(m.Stdout, &api.Hello{Message: msg})
	case "items":
		items, err := c.GetAll(ctx, length)
		if err != nil {
			return m.callError(err)
		}
		if m.output == "json" {
			return printJSON(m.Stdout, &api.Items{Items: items})
		}
		for _, it := range items {
			if err := printItem(m.Stdout, it); err != nil {
				return err
			}
		}
		return nil
	case "stream":
		for it, err := range c.GetStream(ctx, length) {
			if err != nil {
				return m.callError(err)
			}
			if m.output == "json" {
				err = printJSON(m.Stdout, it)
			} else {
				err = printItem(m.Stdout, it)
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("%w: unknown call %q: want hello, items or stream", errUsage, method)
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
