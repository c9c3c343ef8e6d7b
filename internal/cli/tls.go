package cli

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// tlsHint suggests the flag that is likely missing when a call fails in
// the handshake: a mismatch of plaintext and TLS, or of TLS and mutual
// TLS, otherwise shows only as a closed connection.
func (c *clientFlags) tlsHint(err error) string {
	if status.Code(err) != codes.Unavailable {
		return ""
	}
	msg := err.Error()
	closed := strings.Contains(msg, "broken pipe") || strings.Contains(msg, "connection reset") || strings.Contains(msg, "EOF")
	switch {
	case c.config == nil && strings.Contains(msg, "error reading server preface"):
		return "the backend may serve TLS: set --backend-ca"
	case c.config != nil && len(c.config.Certificates) == 0 &&
		(strings.Contains(msg, "certificate required") || closed):
		return "the backend may require a client certificate (mutual TLS): set --backend-cert and --backend-key"
	}
	return ""
}

// callError is callError with a hint when one applies: about the address
// first, then about TLS.
func (c *clientFlags) callError(target string, err error) error {
	hint := backendHint(target, err)
	if hint == "" {
		hint = c.tlsHint(err)
	}
	if hint != "" {
		return fmt.Errorf("%w (%s)", callError(err), hint)
	}
	return callError(err)
}
