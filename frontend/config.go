package frontend

import "github.com/grpcplay/grpcplay/internal/settings"

// Validate reports the settings the frontend cannot run with: a negative
// number (zero means the default). New does not check; a program that
// takes settings from outside calls Validate first.
func (c Config) Validate() error {
	return settings.NotNegative("frontend", c)
}
