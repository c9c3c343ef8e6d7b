package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/testkit"
)

// The image's own command must serve the page to the host through a
// published port, as `docker run -p 5000:5000 grpcplay` promises. The host
// side is an ephemeral port of 127.0.0.1 rather than 5000, so that the test
// does not collide with anything else on the machine; what it checks is the
// container's side, the same either way.
func checkDockerRun(t *testing.T, repo, image string) {
	suffix := make([]byte, 4)
	rand.Read(suffix)
	name := "grpcplay-run-test-" + hex.EncodeToString(suffix)
	run(t, time.Minute, repo, nil, "docker", "run", "-d", "--rm", "--read-only", "--name", name, "-p", "127.0.0.1::5000", image)
	t.Cleanup(func() {
		if out, err := runErr(time.Minute, repo, nil, "docker", "stop", name); err != nil {
			t.Errorf("docker stop %s: %v\n%s", name, err, out)
		}
	})
	hostPort := strings.TrimSpace(run(t, 30*time.Second, repo, nil, "docker", "port", name, "5000/tcp"))
	url := "http://" + strings.Fields(hostPort)[0] + "/"
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	var body string
	testkit.Eventually(t, time.Minute, func() error {
		var err error
		body, err = getURL(client, url)
		return err
	})
	t.Logf("docker run -p 127.0.0.1::5000 %s: GET %s answered %d bytes", image, url, len(body))
}
