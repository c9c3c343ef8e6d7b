package gateway_test

import (
	"strings"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/gateway"
)

// Zero means the default and passes; a negative value is refused, by name.
func TestConfigValidate(t *testing.T) {
	for _, ok := range []gateway.Config{{}, gateway.DefaultConfig} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", ok, err)
		}
	}
	err := gateway.Config{ReplyWriteTimeout: -time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "gateway: ReplyWriteTimeout is -1s") {
		t.Errorf("Validate of a negative setting = %v, want an error naming it", err)
	}
}
