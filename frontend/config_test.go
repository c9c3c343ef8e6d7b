package frontend_test

import (
	"strings"
	"testing"

	"github.com/grpcplay/grpcplay/frontend"
)

// Zero means the default and passes; a negative value is refused, by name.
func TestConfigValidate(t *testing.T) {
	for _, ok := range []frontend.Config{{}, frontend.DefaultConfig} {
		if err := ok.Validate(); err != nil {
			t.Errorf("Validate(%+v) = %v, want nil", ok, err)
		}
	}
	err := frontend.Config{MaxLiveStreams: -1}.Validate()
	if err == nil || !strings.Contains(err.Error(), "frontend: MaxLiveStreams is -1") {
		t.Errorf("Validate of a negative setting = %v, want an error naming it", err)
	}
}
