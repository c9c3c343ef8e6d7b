package cli

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net/http"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
)

// run lets a container image check itself: the final image has no shell,
// curl or grpc_health_probe, only this binary.
func (c *healthcheckCmd) run(ctx context.Context, m *Main) error {
	if c.grpc == "" && c.http == "" {
		c.grpc, c.http = "localhost:50051", "http://localhost:5000/readyz"
	}
	var errs []error
	if c.grpc != "" {
		errs = append(errs, checkGRPC(ctx, c.grpc, c.timeout, c.client.config))
	}
	if c.http != "" {
		errs = append(errs, checkHTTP(ctx, c.http, c.timeout))
	}
	err := errors.Join(errs...)
	if err == nil {
		fmt.Fprintln(m.Stdout, "healthy")
	}
	return err
}

// checkGRPC dials by hand rather than through client.New and Ready, on
// purpose: a container's self-check asks the server as a whole (service ""),
// must fail when the health service is missing (Ready counts Unimplemented
// as reached, for the post's Python server), and makes one attempt at one
// address, without client.New's DNS balancing and retries. The TLS settings
// are the same *tls.Config the other commands pass to client.WithTLS.
func checkGRPC(ctx context.Context, addr string, timeout time.Duration, tlsCfg *tls.Config) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	creds := insecure.NewCredentials()
	if tlsCfg != nil {
		creds = credentials.NewTLS(tlsCfg)
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		return fmt.Errorf("gRPC %s: %w", addr, err)
	}
	defer conn.Close()
	reply, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return fmt.Errorf("gRPC %s: %w", addr, callError(err))
	}
	if reply.GetStatus() != healthpb.HealthCheckResponse_SERVING {
		return fmt.Errorf("gRPC %s: %s", addr, reply.GetStatus())
	}
	return nil
}

func checkHTTP(ctx context.Context, url string, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return fmt.Errorf("HTTP %s: %w", url, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("HTTP %s: %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %s: %s", url, resp.Status)
	}
	return nil
}
