package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/grpcplay/grpcplay/internal/clientlimit"
)

// NewRegistry returns a registry holding the Go runtime and process
// collectors. Each server gets its own, so that the metrics of a backend and
// a frontend in one process (`grpcplay serve`, tests) stay apart.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

// Register registers c with reg, or returns the collector of the same
// metrics that is already there: a server restarted with the same registry
// (a test bringing a backend back) keeps counting in the same series.
func Register[C prometheus.Collector](reg prometheus.Registerer, c C) C {
	err := reg.Register(c)
	var already prometheus.AlreadyRegisteredError
	switch {
	case err == nil:
		return c
	case errors.As(err, &already):
		if existing, ok := already.ExistingCollector.(C); ok {
			return existing
		}
	}
	// Only a programming error (a clashing metric name) gets here.
	panic(err)
}

// LatencyBuckets span loopback calls (a fraction of a millisecond) to
// getStream of millions of items (seconds).
var LatencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}

func serverMetrics(reg prometheus.Registerer) *rpcMetrics {
	return newRPCMetrics(reg, "grpc_server", serverHelp)
}

func clientMetrics(reg prometheus.Registerer) *rpcMetrics {
	return newRPCMetrics(reg, "grpc_client", clientHelp)
}

// A scrape gathers every metric, which costs far more than a page, so
// scrapes have their own cap: maxScrapes in flight, shared max-min fairly
// by address (clientlimit.Shares), so that one client's flood of /metrics,
// from however many addresses, cannot take every slot from the real
// scrapers: a scraper holding fewer takes a slot from the largest holder.
// Prometheus scrapes a target one request at a time, and a metrics port
// accepts MaxMetricsConns connections; the page and REST ports serve
// /metrics too.
const maxScrapes = 32

// MetricsHandler serves reg in the Prometheus text or protobuf format.
// Errors of a collector are logged and counted, and the rest is served.
func MetricsHandler(reg *prometheus.Registry, log *slog.Logger) http.Handler {
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		ErrorLog:      scrapeErrorLog{log},
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      reg,
		Timeout:       10 * time.Second,
	})
	slots := clientlimit.NewShares(maxScrapes, nil)
	slots.Register(reg, "scrape")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		slot, ok := slots.Acquire(r)
		if !ok {
			w.Header().Set("Retry-After", "1")
			http.Error(w, fmt.Sprintf("your address holds its share of the %d scrape slots already; retry later", maxScrapes), http.StatusTooManyRequests)
			return
		}
		defer slot.Release()
		// An eviction cuts the reply to a scraper that does not read.
		defer slot.Stop(w)()
		h.ServeHTTP(w, r.WithContext(slot.Context()))
	})
}

// scrapeErrorLog is promhttp's error log: a collector that fails to gather
// is the operator's to fix, at warn; the rest, failures to send the reply
// (a scraper that reset, that timed out, that reads nothing), are the
// client's doing, at debug, since any client can cause one per scrape.
type scrapeErrorLog struct{ log *slog.Logger }

func (l scrapeErrorLog) Println(v ...any) {
	line := strings.TrimSuffix(fmt.Sprintln(v...), "\n")
	level := slog.LevelDebug
	if strings.HasPrefix(line, "error gathering metrics") {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, line)
}

// MaxMetricsConns caps the metrics port's connections: a few scrapers need
// a few, and the rest of the process's descriptors stay for the other ports.
const MaxMetricsConns = 32

// NewMetricsServer is the backend's own small HTTP server: /metrics only,
// with timeouts, since a gRPC port cannot serve Prometheus' scrape.
func NewMetricsServer(reg *prometheus.Registry, log *slog.Logger) *http.Server {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", MetricsHandler(reg, log))
	return &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       30 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          ServerErrorLog(log),
	}
}
