package client_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/api"
	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// The largest getAll a backend can be configured to allow fits the
// client's receive limit.
func TestClientReceivesLargestAllowedGetAll(t *testing.T) {
	b := backendtest.Start(t, backend.Config{Limits: backend.Limits{MaxItems: backend.MaxItemsCeiling}})
	items, err := testkit.NewClient(t, b.Addr).GetAll(t.Context(), backend.MaxItemsCeiling)
	if err != nil {
		t.Fatal(err)
	}
	if len(items) != backend.MaxItemsCeiling || items[len(items)-1].GetId() != backend.MaxItemsCeiling {
		t.Fatalf("got %d items", len(items))
	}
}

// oversizedServer answers getAll with one item just over api.MaxReplyBytes,
// as a server without our limits (the post's) would for a large length.
type oversizedServer struct{ api.UnimplementedApiServer }

func (oversizedServer) GetAll(context.Context, *api.ApiRequest) (*api.Items, error) {
	return &api.Items{Items: []*api.Item{{Id: 1, Name: strings.Repeat("x", api.MaxReplyBytes)}}}, nil
}

func TestClientRefusesReplyOverLimit(t *testing.T) {
	srv := grpc.NewServer(grpc.MaxSendMsgSize(2 * api.MaxReplyBytes))
	api.RegisterApiServer(srv, oversizedServer{})
	_, err := testkit.NewClient(t, serve(t, srv)).GetAll(t.Context(), 1)
	if status.Code(err) != codes.ResourceExhausted || !strings.Contains(err.Error(), "larger than max") {
		t.Fatalf("oversized reply gave %v, want ResourceExhausted", err)
	}
}

// A panic in the loop body unwinds through the iterator, which must still
// cancel the stream rather than leave the server sending into the void.
func TestClientStreamReleasedWhenLoopPanics(t *testing.T) {
	rec := &recordingServer{streamEnd: make(chan error, 1)}
	srv := grpc.NewServer()
	api.RegisterApiServer(srv, rec)
	c := testkit.NewClient(t, serve(t, srv))

	func() {
		defer func() {
			if p := recover(); p != "caller bug" {
				t.Fatalf("recovered %v", p)
			}
		}()
		for _, err := range c.GetStream(t.Context(), 0) {
			if err != nil {
				t.Fatal(err)
			}
			panic("caller bug")
		}
	}()
	select {
	case err := <-rec.streamEnd:
		if status.Code(err) != codes.Canceled {
			t.Fatalf("server's endless stream ended with %v, want Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the server kept streaming after the loop panicked")
	}
}

// A caller whose context never ends still gets its stream ended by the
// default deadline, on both sides: no server goroutine is held forever.
// A run proves it only when an item arrived before the deadline (the server
// was streaming); on a machine too busy for that, the deadline is doubled.
func TestClientStreamReleasedAtDefaultDeadline(t *testing.T) {
	for timeout := 200 * time.Millisecond; ; timeout *= 2 {
		if streamReleasedAtDeadline(t, timeout) {
			return
		}
		if timeout > 10*time.Second {
			t.Fatalf("no item arrived within a deadline of %v", timeout)
		}
		t.Logf("no item arrived within a deadline of %v; trying a longer one", timeout)
	}
}

// streamReleasedAtDeadline says whether the stream delivered an item before
// its default deadline of timeout; when it did, it checks that both sides
// ended with the deadline.
func streamReleasedAtDeadline(t *testing.T, timeout time.Duration) bool {
	rec := &recordingServer{streamEnd: make(chan error, 1)}
	srv := grpc.NewServer()
	api.RegisterApiServer(srv, rec)
	c := testkit.NewClient(t, serve(t, srv), client.WithStreamTimeout(timeout))
	var last error
	items := 0
	for _, err := range c.GetStream(context.Background(), 0) {
		if err == nil {
			items++
		}
		last = err
	}
	if status.Code(last) != codes.DeadlineExceeded {
		t.Fatalf("endless stream ended with %v, want DeadlineExceeded", last)
	}
	if items == 0 {
		return false
	}
	select {
	case err := <-rec.streamEnd:
		if code := status.Code(err); code != codes.DeadlineExceeded && code != codes.Canceled {
			t.Fatalf("server's stream ended with %v", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("the server kept streaming after the deadline")
	}
	return true
}
