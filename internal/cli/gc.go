package cli

import (
	"os"
	"runtime/debug"
)

// serverGCPercent is the GC target of the server commands when GOGC is not
// set. At Go's default of 100 the heap goal is 4 MiB until the live heap
// passes 2 MiB, and a grpcplay server's live heap is about 1.3 MiB (every
// face's descriptors, metric series and connection buffers, twice a bare
// grpc-go server's): the GC then ran every 2.5 MiB allocated, some 40
// times a second under load, and its marking was a fifth of a call's
// instructions. At 200 the goal is 8 MiB, for a few MiB more memory. A
// memory limit (GOMEMLIMIT, which the Kubernetes manifests set from the
// container's limit) still makes the GC work harder before a container
// runs out.
const serverGCPercent = 200

// setServerGC applies serverGCPercent unless GOGC says otherwise. It reads
// the process's own environment, as the runtime does, not Main.Getenv.
func setServerGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(serverGCPercent)
	}
}
