package telemetry

import (
	"context"
	"io"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

func TestRPCMetricsCodes(t *testing.T) {
	m := serverMetrics(prometheus.NewRegistry())
	info := &grpc.UnaryServerInfo{FullMethod: "/api.Api/sayHello"}
	for _, err := range []error{nil, context.Canceled, status.Error(codes.InvalidArgument, "bad"), status.Error(codes.Code(42), "odd")} {
		_, _ = m.unaryServer(context.Background(), nil, info, func(context.Context, any) (any, error) { return nil, err })
	}
	for code, want := range map[string]float64{"OK": 1, "Canceled": 1, "InvalidArgument": 1, "Code(42)": 1, "Internal": 0} {
		got := testutil.ToFloat64(m.handled.WithLabelValues("unary", "api.Api", "sayHello", code))
		if got != want {
			t.Errorf("handled{grpc_code=%q} = %v, want %v", code, got, want)
		}
	}
	if got := testutil.ToFloat64(m.sent.WithLabelValues("unary", "api.Api", "sayHello")); got != 1 {
		t.Errorf("msg_sent = %v, want 1: only the call that succeeded sent its reply", got)
	}
	if got := testutil.ToFloat64(m.received.WithLabelValues("unary", "api.Api", "sayHello")); got != 4 {
		t.Errorf("msg_received = %v, want 4", got)
	}
}

func TestRPCMetricsAddAStreamsMessagesWhenItEnds(t *testing.T) {
	m := serverMetrics(prometheus.NewRegistry())
	sent := m.sent.WithLabelValues("server_stream", "api.Api", "getStream")
	err := m.streamServer(nil, nopStream{}, streamInfo, func(_ any, ss grpc.ServerStream) error {
		for range 5 {
			if err := ss.SendMsg(nil); err != nil {
				return err
			}
		}
		if got := testutil.ToFloat64(sent); got != 0 {
			t.Errorf("msg_sent = %v during the stream, want 0 until it ends", got)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(sent); got != 5 {
		t.Errorf("msg_sent = %v, want 5", got)
	}
	if got := testutil.ToFloat64(m.handled.WithLabelValues("server_stream", "api.Api", "getStream", "OK")); got != 1 {
		t.Errorf("handled OK = %v, want 1", got)
	}
}

// replyStream is a client stream whose one reply has arrived.
type replyStream struct {
	grpc.ClientStream
	replied bool
}

func (*replyStream) SendMsg(any) error { return nil }

func (s *replyStream) RecvMsg(any) error {
	if s.replied {
		return io.EOF
	}
	s.replied = true
	return nil
}

// A unary call made on a stream is counted as the unary
// call it is, in the same series as one made with Invoke.
func TestRPCMetricsCountAUnaryCallOnAStreamAsUnary(t *testing.T) {
	m := clientMetrics(prometheus.NewRegistry())
	streamer := func(context.Context, *grpc.StreamDesc, *grpc.ClientConn, string, ...grpc.CallOption) (grpc.ClientStream, error) {
		return &replyStream{}, nil
	}
	cs, err := m.streamClient(context.Background(), &grpc.StreamDesc{}, nil, "/api.Api/sayHello", streamer)
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.SendMsg(nil); err != nil {
		t.Fatal(err)
	}
	if err := cs.RecvMsg(nil); err != nil {
		t.Fatal(err)
	}
	if got := testutil.ToFloat64(m.handled.WithLabelValues("unary", "api.Api", "sayHello", "OK")); got != 1 {
		t.Errorf(`handled{grpc_type="unary",grpc_code="OK"} = %v, want 1`, got)
	}
	if got := testutil.CollectAndCount(m.handled, "grpc_client_handled_total"); got != int(codes.Unauthenticated)+1 {
		t.Errorf("handled has %d series, want the %d codes of one method and type", got, int(codes.Unauthenticated)+1)
	}
	for name, vec := range map[string]*prometheus.CounterVec{"msg_received": m.received, "msg_sent": m.sent} {
		if got := testutil.ToFloat64(vec.WithLabelValues("unary", "api.Api", "sayHello")); got != 1 {
			t.Errorf("%s = %v, want 1", name, got)
		}
	}
}
