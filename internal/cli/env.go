package cli

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"strings"
)

// envPrefix names the environment fallback of every flag except the post's
// own BACKEND_HOST and BACKEND_PORT: --foo-bar falls back to GRPCPLAY_FOO_BAR.
const envPrefix = "GRPCPLAY_"

func envName(flagName string) string {
	return envPrefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// noEnv lists the flags without a GRPCPLAY_ fallback: --backend comes from
// the post's BACKEND_HOST and BACKEND_PORT, and -o only makes sense typed.
var noEnv = map[string]bool{"backend": true, "o": true}

// applyEnv gives every flag of fs its environment fallback, and says so in
// its usage line, so that --help documents both. Command-line flags parsed
// afterwards still win.
func applyEnv(fs *flag.FlagSet, getenv func(string) string) error {
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if noEnv[f.Name] {
			return
		}
		name := envName(f.Name)
		f.Usage += fmt.Sprintf(" (env %s)", name)
		v := getenv(name)
		if v == "" || err != nil {
			return
		}
		if setErr := fs.Set(f.Name, v); setErr != nil {
			err = fmt.Errorf("invalid value %q for %s: %v", v, name, setErr)
			return
		}
		// Show the value in effect as the default in --help.
		f.DefValue = f.Value.String()
	})
	return err
}

// backendHostPort is the post's way to name the backend: BACKEND_HOST and
// BACKEND_PORT, defaulting to localhost:50051.
func backendHostPort(getenv func(string) string) (host, port string) {
	host, port = getenv("BACKEND_HOST"), getenv("BACKEND_PORT")
	if host == "" {
		host = "localhost"
	}
	if port == "" {
		port = "50051"
	}
	return host, port
}

// defaultTarget resolves through DNS so that a name with several addresses
// (a scaled Compose service, a headless Kubernetes Service) is balanced
// over all of them.
func defaultTarget(getenv func(string) string) string {
	host, port := backendHostPort(getenv)
	return "dns:///" + net.JoinHostPort(host, port)
}

// levelFlag is a slog.Level usable as a flag.Value.
type levelFlag struct{ level *slog.Level }

func (l levelFlag) String() string {
	if l.level == nil {
		return ""
	}
	return strings.ToLower(l.level.String())
}

func (l levelFlag) Set(s string) error { return l.level.UnmarshalText([]byte(s)) }

// int32Flag keeps lengths in the wire's own type, so an out-of-range value
// is a usage error instead of a silent wrap-around.
type int32Flag struct{ v *int32 }

func (f int32Flag) String() string {
	if f.v == nil {
		return "0"
	}
	return fmt.Sprint(*f.v)
}

func (f int32Flag) Set(s string) error {
	n, err := parseInt32(s)
	if err != nil {
		return err
	}
	*f.v = n
	return nil
}
