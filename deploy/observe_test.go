package deploy

import (
	"strconv"
	"testing"
)

// The backend's metrics port by default (--metrics-addr in internal/cli).
const defaultMetricsPort = 9464

// Prometheus finds each pod by its prometheus.io annotations, and they must
// name a port and path the binary serves metrics on by default.
func TestK8sPodsAreAnnotatedForScraping(t *testing.T) {
	m := loadBase(t)
	for _, tt := range []struct {
		deployment, port string
		number           int32
	}{
		{"backend", "metrics", defaultMetricsPort},
		{"frontend", "http", defaultHTTPPort},
	} {
		d := m.deployments[tt.deployment]
		if d == nil {
			t.Fatalf("no %s Deployment", tt.deployment)
		}
		a := d.Spec.Template.Annotations
		if a["prometheus.io/scrape"] != "true" || a["prometheus.io/path"] != "/metrics" {
			t.Errorf("%s pods: annotations %v, want prometheus.io/scrape \"true\" and path /metrics", tt.deployment, a)
		}
		c := &d.Spec.Template.Spec.Containers[0]
		port := containerPort(t, c, tt.port, tt.number)
		if a["prometheus.io/port"] != strconv.Itoa(int(port.ContainerPort)) {
			t.Errorf("%s pods: prometheus.io/port %q, want the %s port %d", tt.deployment, a["prometheus.io/port"], tt.port, port.ContainerPort)
		}
	}
}
