// Command pause is the sandbox ("pause") container of scripts/k8s-cluster's
// cluster, which cannot pull registry.k8s.io/pause. Like that image it holds
// the pod's namespaces open, doing nothing until it is told to stop.
package main

import (
	"os"
	"os/signal"
	"syscall"
)

func main() {
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	<-stop
}
