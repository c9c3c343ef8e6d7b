package backend_test

import (
	"strings"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/backend"
)

// Zero means the default and passes; a negative value is refused, by name.
func TestConfigValidate(t *testing.T) {
	for _, ok := range []backend.Config{{}, backend.DefaultConfig} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", ok, err)
		}
	}
	err := backend.Config{MaxConnectionAge: -time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "backend: MaxConnectionAge is -1s") {
		t.Errorf("Validate of a negative setting = %v, want an error naming it", err)
	}
}

// Limits no call could satisfy are refused too.
func TestConfigValidateLimits(t *testing.T) {
	cfg := backend.Config{Limits: backend.Limits{MaxItems: backend.MaxItemsCeiling + 1}}
	if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), "4 MiB") {
		t.Errorf("Validate = %v, want the 4 MiB limit", err)
	}
}
