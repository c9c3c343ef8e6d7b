// Package version reports which build of grpcplay is running.
package version

import "runtime/debug"

// Version is set at link time: -ldflags=-X=github.com/grpcplay/grpcplay/internal/version.Version=v1.2.3
var Version = ""

// String returns the linked version, else the module version or VCS revision
// that the go command stamped into the binary, else "dev".
func String() string {
	if Version != "" {
		return Version
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "dev"
	}
	if v := info.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range info.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return s.Value[:12]
		}
	}
	return "dev"
}
