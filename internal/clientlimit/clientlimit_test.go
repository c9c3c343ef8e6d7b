package clientlimit_test

import (
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/internal/clientlimit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestClientKey(t *testing.T) {
	same := [][2]string{
		{"127.0.0.1:1", "127.0.0.1:2"},
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:2:ffff::9]:2"}, // one /64
		{"[::ffff:10.0.0.1]:1", "10.0.0.1:2"},               // IPv4-mapped
	}
	for _, c := range same {
		if clientlimit.Client(c[0]) != clientlimit.Client(c[1]) {
			t.Errorf("%s and %s are different clients, want one", c[0], c[1])
		}
	}
	apart := [][2]string{
		{"127.0.0.1:1", "127.0.0.2:1"},
		{"[2001:db8:1:2::1]:1", "[2001:db8:1:3::1]:1"},
	}
	for _, c := range apart {
		if clientlimit.Client(c[0]) == clientlimit.Client(c[1]) {
			t.Errorf("%s and %s are one client, want two", c[0], c[1])
		}
	}
}

// A reader is judged only on the time writes waited on it, and dropped
// once that time shows it under the floor.
func TestMeterDropsOnlySlowReaders(t *testing.T) {
	floor := clientlimit.MinRate{Rate: 1000, Window: time.Second, Stall: time.Second}
	fast := floor.Meter()
	for range 10_000 {
		if err := fast.Wrote(4096, time.Millisecond); err != nil {
			t.Fatalf("a 4 MB/s reader was dropped: %v", err)
		}
	}
	slow := floor.Meter()
	var err error
	for i := 0; err == nil && i < 100; i++ {
		err = slow.Wrote(100, 200*time.Millisecond) // 500 B/s
	}
	if err == nil {
		t.Fatal("a 500 B/s reader was not dropped under a 1000 B/s floor")
	}
	if got := slow.Deadline(time.Unix(0, 0)); got != time.Unix(1, 0) {
		t.Fatalf("Deadline = %v, want a Stall (1s) later", got)
	}
}
