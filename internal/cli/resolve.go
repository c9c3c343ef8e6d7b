package cli

import (
	"time"

	"google.golang.org/grpc/resolver/dns"
)

// backendResolveInterval is how soon after its last lookup the frontend may
// look the backend's name up again. grpc-go waits at least 30 s, however
// many connections are lost meanwhile. A rollout of the backend behind a
// headless Service replaces pods faster than that: a frontend whose last
// answer named only pods that have since gone would have nothing to call
// until the 30 s had passed (the Kubernetes test saw 503s while five pods
// were replaced in 21 s). 5 s is the TTL of cluster DNS records, so a
// lookup sooner could only return the same answer.
const backendResolveInterval = 5 * time.Second

// The setting is process-wide and may only change before any connection
// exists: hence init, and the program's choice, not the client library's.
func init() { dns.SetMinResolutionInterval(backendResolveInterval) }
