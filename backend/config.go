package backend

import "github.com/grpcplay/grpcplay/internal/settings"

// Validate reports the settings the server cannot run with: a negative
// number (zero means the default), or limits no call could satisfy. New
// does not check, so that a test can run a server past the limits; a
// program that takes settings from outside calls Validate first.
func (c Config) Validate() error {
	if err := settings.NotNegative("backend", c); err != nil {
		return err
	}
	return c.withDefaults().Limits.Validate()
}
