package client

import (
	"context"
	"time"
)

// WithDNSRefreshLookup is WithDNSRefresh with lookupHost in place of the
// stdlib's resolver, so that a test decides what the name resolves to.
func WithDNSRefreshLookup(interval time.Duration, lookupHost func(ctx context.Context, host string) ([]string, error)) Option {
	return func(s *settings) { s.dnsRefresh = dnsRefresh{interval: interval, lookupHost: lookupHost} }
}
