// Package httpserver is the http.Server of the frontend and the REST
// gateway: the same limits, the same graceful stop. A server with no
// timeouts lets one slow client hold a connection, and its goroutine and
// memory, for ever; these bound every phase of a request.
package httpserver

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/grpcplay/grpcplay/internal/clientlimit"
	"github.com/grpcplay/grpcplay/internal/telemetry"
)

const (
	// MaxHeaderBytes bounds a request's headers and URL.
	MaxHeaderBytes = 64 << 10
	// ReadHeaderTimeout closes a connection whose headers come too slowly
	// (slowloris).
	ReadHeaderTimeout = 5 * time.Second
	// ReadTimeout bounds reading a whole request: every route takes a
	// small form at most.
	ReadTimeout = 10 * time.Second
	// IdleTimeout closes a keep-alive connection nobody uses.
	IdleTimeout = 30 * time.Second
)

// New is an http.Server for h with the shared limits. writeTimeout is the
// server's own: how long a response may take to write, counted from the
// start of the request. Its error log goes to log: at debug for what a
// client caused, at warn for the rest. Each connection's kernel send buffer
// is bounded (clientlimit.BoundSendBuffer), so that a stalled reader pins
// little of the kernel's memory.
func New(h http.Handler, writeTimeout time.Duration, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       ReadTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       IdleTimeout,
		MaxHeaderBytes:    MaxHeaderBytes,
		ConnContext:       clientlimit.BoundSendBuffer,
		ErrorLog:          telemetry.ServerErrorLog(log),
	}
}

// Serve accepts connections on lis until Shutdown. It returns nil after a
// shutdown and the accept error otherwise.
func Serve(srv *http.Server, lis net.Listener) error {
	err := srv.Serve(lis)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// Shutdown stops accepting connections and waits for the requests in
// flight. When ctx ends first, it logs warning, for the operator, and
// closes every connection.
func Shutdown(ctx context.Context, srv *http.Server, log *slog.Logger, warning string) error {
	if err := srv.Shutdown(ctx); err != nil {
		log.Warn(warning, "error", err)
		return errors.Join(err, srv.Close())
	}
	return nil
}
