package interop_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/grpcplay/grpcplay/backend"
	"github.com/grpcplay/grpcplay/backend/backendtest"
	"github.com/grpcplay/grpcplay/client"
	"github.com/grpcplay/grpcplay/internal/testkit"
)

// Within our limits, our backend must answer exactly what the post's server
// answers, for awkward inputs as well as the page's.
func TestSameAnswersAsPostServer(t *testing.T) {
	post := testkit.NewClient(t, startPostServer(t))
	ours := testkit.NewClient(t, backendtest.Start(t, backend.Config{}).Addr)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	names := []string{
		"Gonzalo", "", "ñandú 🚀", "tab\there", "nul\x00byte", "<b>&amp;</b>",
		strings.Repeat("x", backend.DefaultLimits.MaxNameBytes),
	}
	for _, name := range names {
		want, err := post.SayHello(ctx, name)
		if err != nil {
			t.Fatalf("post sayHello(%q): %v", name, err)
		}
		got, err := ours.SayHello(ctx, name)
		if err != nil || got != want {
			t.Errorf("sayHello(%.40q) = %.40q, %v; the post's server says %.40q", name, got, err, want)
		}
	}

	for _, n := range []int32{0, 1, 1000, backend.DefaultLimits.MaxItems} {
		want, err := post.GetAll(ctx, n)
		if err != nil {
			t.Fatalf("post getAll(%d): %v", n, err)
		}
		got, err := ours.GetAll(ctx, n)
		if err != nil {
			t.Fatalf("getAll(%d): %v", n, err)
		}
		if !slices.Equal(toJSONItems(got), toJSONItems(want)) {
			t.Errorf("getAll(%d) differs from the post's server: got %d items, want %d", n, len(got), len(want))
		}
	}

	for _, n := range []int32{0, 1, 10_000} {
		want := collect(t, post.GetStream(ctx, n))
		got := collect(t, ours.GetStream(ctx, n))
		if !slices.Equal(toJSONItems(got), toJSONItems(want)) {
			t.Errorf("getStream(%d) differs from the post's server: got %d items, want %d", n, len(got), len(want))
		}
	}
}

// The post's server answers any length, a negative one with no items. Ours
// refuses lengths outside its limits with InvalidArgument instead, so that one
// call can neither exceed gRPC's message size nor pin the server. This pins
// the difference down so that it stays deliberate.
func TestLengthOutsideLimitsIsRefusedWhereThePostAnswers(t *testing.T) {
	post := testkit.NewClient(t, startPostServer(t))
	ours := testkit.NewClient(t, backendtest.Start(t, backend.Config{}).Addr)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	if items, err := post.GetAll(ctx, -1); err != nil || len(items) != 0 {
		t.Errorf("post getAll(-1) = %d items, %v; want none and no error", len(items), err)
	}
	for _, n := range []int32{-1, backend.DefaultLimits.MaxItems + 1} {
		if _, err := ours.GetAll(ctx, n); status.Code(err) != codes.InvalidArgument || !strings.Contains(status.Convert(err).Message(), "length") {
			t.Errorf("getAll(%d) error = %v, want InvalidArgument naming the length", n, err)
		}
	}
	for _, err := range ours.GetStream(ctx, -1) {
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("getStream(-1) error = %v, want InvalidArgument", err)
		}
	}
}

func collect(t *testing.T, seq func(func(*client.Item, error) bool)) []*client.Item {
	t.Helper()
	var items []*client.Item
	for item, err := range seq {
		if err != nil {
			t.Fatalf("stream: %v", err)
		}
		items = append(items, item)
	}
	return items
}
