package settings_test

import (
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/grpcplay/grpcplay/internal/settings"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

type limits struct{ Max, Min int32 }

type config struct {
	Timeout time.Duration
	Limits  limits
	Name    string
	On      bool
	Ratio   float64
	hidden  int
}

var defaults = config{Timeout: time.Second, Limits: limits{Max: 10, Min: 1}, Name: "d", On: true, Ratio: 0.5, hidden: 7}

func TestFillSetsOnlyZeroFields(t *testing.T) {
	cfg := config{Timeout: -time.Second, Limits: limits{Max: 3}, Name: "mine"}
	settings.Fill(&cfg, defaults)
	want := config{Timeout: -time.Second, Limits: limits{Max: 3, Min: 1}, Name: "mine", On: true, Ratio: 0.5}
	if cfg != want {
		t.Fatalf("Fill = %+v, want %+v", cfg, want)
	}
}

func TestNotNegativeNamesEachField(t *testing.T) {
	if err := settings.NotNegative("x", defaults); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	err := settings.NotNegative("x", config{Timeout: -time.Second, Limits: limits{Min: -2}, Ratio: -1})
	if err == nil {
		t.Fatal("no error for negative fields")
	}
	for _, want := range []string{"x: Timeout is -1s", "x: Limits.Min is -2", "x: Ratio is -1", "must not be negative (zero means the default)"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "Max") {
		t.Errorf("error %q names a field that is not negative", err)
	}
}
