package cli

import (
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// backendHint names the likely cause of a failed call to target, and its
// fix, when the error shows one; otherwise "". gRPC reports both causes
// only as Unavailable with the transport's words.
func backendHint(target string, err error) string {
	if status.Code(err) != codes.Unavailable {
		return ""
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "connection refused"):
		return fmt.Sprintf("nothing listens on %s: start a backend (grpcplay serve, or grpcplay backend), or set --backend to where one listens", target)
	case strings.Contains(msg, "looked like an HTTP/1.1 header"):
		return fmt.Sprintf("%s answers HTTP/1.1, not gRPC: it is an HTTP port (the page's or REST/JSON's); set --backend to the backend's gRPC port, 50051 unless changed", target)
	}
	return ""
}
