package bench

import (
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogramQuantilesWithinTheirPrecision(t *testing.T) {
	var h histogram
	// 1..10,000 microseconds, once each: the q-quantile is q*10ms.
	for i := 1; i <= 10_000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, q := range []float64{0.5, 0.9, 0.99} {
		want := time.Duration(q * float64(10*time.Millisecond))
		got := h.quantile(q)
		if diff := got - want; diff < -want/64 || diff > want/64 {
			t.Errorf("p%v = %v, want %v ± 1/64", q*100, got, want)
		}
	}
	if h.max != 10*time.Millisecond || h.quantile(1) != h.max {
		t.Errorf("max %v, p100 %v", h.max, h.quantile(1))
	}
	var empty histogram
	if empty.quantile(0.5) != 0 {
		t.Error("an empty histogram has a median")
	}
	// Every bucket's value falls in its own bucket, from nanoseconds to hours.
	for _, d := range []time.Duration{0, 1, 63, 64, 65, 127, 128, 1000, time.Second, time.Hour} {
		if b := bucketOf(d); bucketOf(bucketValue(b)) != b {
			t.Errorf("%v: bucket %d's value %v is in bucket %d", d, b, bucketValue(b), bucketOf(bucketValue(b)))
		}
	}
}

func TestRunWorkersStopsAtItsCount(t *testing.T) {
	var calls atomic.Int64
	w := RunWorkers(8, time.Time{}, 1000, func() (int64, error) {
		if calls.Add(1)%100 == 0 {
			return 0, errors.New("every hundredth fails")
		}
		return 3, nil
	})
	if got := calls.Load(); got != 1000 {
		t.Fatalf("%d calls made, want 1000", got)
	}
	if w.Calls != 990 || w.Errors != 10 || w.Items != 990*3 || w.FirstErr == nil {
		t.Fatalf("tally %+v, want 990 calls of 3 items and 10 errors", w)
	}
	if q := w.Hist.Quantile(0.5); q <= 0 {
		t.Fatalf("median latency %v, want > 0", q)
	}
}
