package deploy

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/grpcplay/grpcplay/internal/testkit"
)

// The image tag the test builds and keeps, so that a rerun reuses the
// builder stage's layers.
const testTag = "compose-test"

const pageURL = "http://127.0.0.1:5000/"

// TestCompose runs docker-compose.yml on the local Docker engine, as a user
// would, with the image built from the repository's Dockerfile.
//
//	GRPCPLAY_DOCKER_TESTS=1 go test -race -v -run Compose ./deploy/ -timeout 20m
//
// GRPCPLAY_COMPOSE picks the Compose command (default: `docker compose` when
// installed, else docker-compose); GRPCPLAY_GO_IMAGE replaces the builder
// image that scripts/builder-image makes (see builder_test.go) with a real
// one, e.g. golang:1.26.
func TestCompose(t *testing.T) {
	if os.Getenv("GRPCPLAY_DOCKER_TESTS") != "1" {
		t.Skip("set GRPCPLAY_DOCKER_TESTS=1 to run the Docker tests")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	checkDockerAndPort(t, repo)
	c := newCompose(t, repo)
	goImage := goBuilderImage(t, repo)

	// Built through the compose file's own build section, with the
	// Dockerfile's GO_IMAGE pointing at the builder we have. Both services
	// share the image, so building one builds it for both.
	c.env = append(c.env, "GO_IMAGE="+goImage)
	start := time.Now()
	// --force-rm: a failed step leaves no stopped container behind. The
	// deadline allows for compiling every module on a busy 2-core machine
	// (more than 10 minutes beside a dozen other builds).
	c.run(25*time.Minute, "build", "--force-rm", "backend")
	t.Logf("built grpcplay:%s with %s in %v", testTag, goImage, time.Since(start).Round(time.Millisecond))
	pruneStaleImages(t, repo, start)

	t.Run("image", func(t *testing.T) { checkImage(t, repo, "grpcplay:"+testTag) })
	t.Run("docker run -p", func(t *testing.T) { checkDockerRun(t, repo, "grpcplay:"+testTag) })
	if t.Failed() {
		return
	}

	client := &http.Client{Timeout: 10 * time.Second}
	t.Cleanup(client.CloseIdleConnections)

	start = time.Now()
	c.run(3*time.Minute, "up", "-d", "--no-build")
	c.waitHealthy(t, map[string]int{"backend": 1, "frontend": 1}, 2*time.Minute)
	t.Logf("from `up` to healthy: %v", time.Since(start).Round(time.Millisecond))

	t.Run("page", func(t *testing.T) {
		body, err := getPage(client)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("GET / answered %d bytes", len(body))
	})

	t.Run("scale to 3 backends", func(t *testing.T) { scaleOut(t, c, client) })
	if t.Failed() {
		return
	}

	t.Run("stop one backend under load", func(t *testing.T) { stopOneUnderLoad(t, c) })

	t.Run("down", func(t *testing.T) {
		c.down(t)
	})
}

// scaleOut scales the backend to three replicas and checks that the
// frontend, which looks "backend" up every --backend-refresh, spreads its
// calls evenly over all of them from 10 s after they are healthy on: it need
// not wait for its connection to the first to reach --max-connection-age.
func scaleOut(t *testing.T, c *compose, client *http.Client) {
	c.run(3*time.Minute, "up", "-d", "--no-build", "--no-recreate", "--scale", "backend=3")
	backends := c.waitHealthy(t, map[string]int{"backend": 3, "frontend": 1}, 2*time.Minute)["backend"]
	healthy := time.Now()

	// Bursts of pages, each counted once the backends have logged all its
	// calls, until one starts 10 s or more after the new replicas were
	// healthy: that one must be balanced. The earlier ones show how soon the
	// calls were spread.
	const (
		pages          = 30
		callsPerPage   = 3 // sayHello, getAll and getStream
		balancedWithin = 10 * time.Second
	)
	balancedFrom := time.Duration(-1)
	for {
		began := time.Since(healthy)
		before := c.callCounts(t, backends)
		for range pages {
			if _, err := getPage(client); err != nil {
				t.Fatal(err)
			}
		}
		// The backends write their call lines through a log buffer, at
		// most 100 ms after the calls.
		var burst map[string]int
		testkit.Eventually(t, 5*time.Second, func() error {
			burst = delta(c.callCounts(t, backends), before)
			total := 0
			for _, n := range burst {
				total += n
			}
			return testkit.Failf(total >= pages*callsPerPage, "%d call lines for %d pages: %v", total, pages, burst)
		})
		balanced := slices.IndexFunc(backends, func(id string) bool {
			n := burst[short(id)]
			return n < pages*callsPerPage/len(backends)*3/4 || n > pages*callsPerPage/len(backends)*5/4
		}) < 0
		switch {
		case !balanced:
			t.Logf("api.Api calls per backend replica for %d pages from %v after all 3 were healthy: %v", pages, began.Round(100*time.Millisecond), burst)
			balancedFrom = -1
		case balancedFrom < 0:
			balancedFrom = began
		}
		if began >= balancedWithin {
			t.Logf("api.Api calls per backend replica for %d pages from %v after all 3 were healthy: %v; balanced in every burst from %v on",
				pages, began.Round(100*time.Millisecond), burst, balancedFrom.Round(100*time.Millisecond))
			if !balanced {
				t.Errorf("%v after the third replica was healthy, calls per replica %v: want each within ±25%% of a third", began.Round(100*time.Millisecond), burst)
			}
			return
		}
	}
}

// stopOneUnderLoad stops one backend replica while pages are loaded, and
// checks that no page request failed and that the replica exited cleanly.
func stopOneUnderLoad(t *testing.T, c *compose) {
	backends := c.containers(t, "backend")
	if len(backends) != 3 {
		t.Fatalf("%d backends, want 3", len(backends))
	}
	victim := backends[0]
	loadWhile(t, pageURL, func() {
		start := time.Now()
		run(t, time.Minute, c.repo, nil, "docker", "stop", victim)
		t.Logf("docker stop %s took %v", short(victim), time.Since(start).Round(time.Millisecond))
	}).check(t, "the stop")
	// SIGTERM is a graceful shutdown: exit status 0, not a SIGKILL's 137.
	if code := strings.TrimSpace(run(t, 30*time.Second, c.repo, nil, "docker", "inspect", "--format", "{{.State.ExitCode}}", victim)); code != "0" {
		t.Errorf("stopped backend exited with %s, want 0", code)
	}
}

// checkDockerAndPort fails the test when the Docker engine does not answer
// or when the compose file's port is taken.
func checkDockerAndPort(t *testing.T, repo string) {
	t.Helper()
	if _, err := exec.LookPath("docker"); err != nil {
		t.Fatal("GRPCPLAY_DOCKER_TESTS=1 but docker is not installed")
	}
	run(t, 30*time.Second, repo, nil, "docker", "version", "--format", "{{.Server.Version}}")

	// The compose file publishes 5000, as the README says. Another process
	// there would make `up` fail, or worse, answer the test's requests.
	if lis, err := net.Listen("tcp", ":5000"); err != nil {
		t.Fatalf("port 5000 is taken (%v): docker-compose.yml publishes the frontend on 5000; stop whatever listens there", err)
	} else {
		lis.Close()
	}
}

// compose runs Compose commands for one throwaway project.
type compose struct {
	t       *testing.T
	repo    string
	command []string
	project string
	env     []string
}

func newCompose(t *testing.T, repo string) *compose {
	t.Helper()
	command := strings.Fields(os.Getenv("GRPCPLAY_COMPOSE"))
	if len(command) == 0 {
		if exec.Command("docker", "compose", "version").Run() == nil {
			command = []string{"docker", "compose"}
		} else if _, err := exec.LookPath("docker-compose"); err == nil {
			command = []string{"docker-compose"}
		} else {
			t.Fatal("neither `docker compose` nor docker-compose is installed")
		}
	}
	suffix := make([]byte, 4)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	c := &compose{
		t:       t,
		repo:    repo,
		command: command,
		project: "grpcplaytest" + hex.EncodeToString(suffix),
		env: []string{
			"GRPCPLAY_TAG=" + testTag,
			"GRPCPLAY_VERSION=" + testTag,
			// Per-call log lines show which replica served what.
			"GRPCPLAY_LOG_LEVEL=debug",
		},
	}
	t.Logf("compose: %s, project %s", strings.Join(command, " "), c.project)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := c.runErr(time.Minute, "logs", "--no-color", "--tail", "30")
			t.Logf("compose logs:\n%s", out)
		}
		c.down(t)
	})
	return c
}

func (c *compose) args(args ...string) []string {
	return append(append(c.command[1:], "-p", c.project, "-f", filepath.Join(c.repo, "docker-compose.yml")), args...)
}

func (c *compose) run(timeout time.Duration, args ...string) string {
	c.t.Helper()
	return run(c.t, timeout, c.repo, c.env, c.command[0], c.args(args...)...)
}

func (c *compose) runErr(timeout time.Duration, args ...string) (string, error) {
	return runErr(timeout, c.repo, c.env, c.command[0], c.args(args...)...)
}

// down removes the project and checks that nothing of it is left.
func (c *compose) down(t *testing.T) {
	t.Helper()
	if out, err := c.runErr(3*time.Minute, "down", "-v", "--remove-orphans", "--timeout", "30"); err != nil {
		t.Errorf("down: %v\n%s", err, tail(out, 20))
	}
	label := "label=com.docker.compose.project=" + c.project
	for _, what := range [][]string{
		{"ps", "-a", "-q", "--filter", label},
		{"network", "ls", "-q", "--filter", label},
		{"network", "ls", "-q", "--filter", "name=" + c.project + "_"},
		{"volume", "ls", "-q", "--filter", label},
	} {
		out, err := runErr(time.Minute, c.repo, nil, "docker", what...)
		if err != nil {
			t.Errorf("docker %s: %v", strings.Join(what, " "), err)
		} else if left := strings.Fields(out); len(left) > 0 {
			t.Errorf("after down, docker %s lists %v", strings.Join(what, " "), left)
		}
	}
}

// containers returns the IDs of a service's running containers, sorted by
// their replica number so that the first is the oldest.
func (c *compose) containers(t *testing.T, service string) []string {
	t.Helper()
	out := run(t, 30*time.Second, c.repo, nil, "docker", "ps", "--no-trunc",
		"--filter", "label=com.docker.compose.project="+c.project,
		"--filter", "label=com.docker.compose.service="+service,
		"--format", `{{.Label "com.docker.compose.container-number"}} {{.ID}}`)
	var lines []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			lines = append(lines, l)
		}
	}
	slices.SortFunc(lines, func(a, b string) int {
		var na, nb int
		fmt.Sscan(a, &na)
		fmt.Sscan(b, &nb)
		return na - nb
	})
	ids := make([]string, len(lines))
	for i, l := range lines {
		ids[i] = strings.Fields(l)[1]
	}
	return ids
}

// waitHealthy polls until each service has the wanted number of containers
// and every one of them reports healthy, and returns their IDs.
func (c *compose) waitHealthy(t *testing.T, want map[string]int, timeout time.Duration) map[string][]string {
	t.Helper()
	var ids map[string][]string
	testkit.Eventually(t, timeout, func() error {
		ids = map[string][]string{}
		var all []string
		ready := true
		for service, n := range want {
			ids[service] = c.containers(t, service)
			all = append(all, ids[service]...)
			ready = ready && len(ids[service]) == n
		}
		var status []string
		if ready {
			out := run(t, 30*time.Second, c.repo, nil, "docker", append([]string{"inspect", "--format",
				`{{.Name}}={{if .State.Health}}{{.State.Health.Status}}{{else}}no-healthcheck{{end}}`}, all...)...)
			status = strings.Fields(out)
			for _, s := range status {
				ready = ready && strings.HasSuffix(s, "=healthy")
			}
		}
		return testkit.Failf(ready, "not healthy: containers %v, health %v", ids, status)
	})
	return ids
}

// callCounts counts, per backend container, the api.Api calls it has logged
// (one info line per call; health checks are grpc.health.v1 and not counted).
func (c *compose) callCounts(t *testing.T, backends []string) map[string]int {
	t.Helper()
	counts := map[string]int{}
	for _, id := range backends {
		out, err := exec.Command("docker", "logs", id).CombinedOutput()
		if err != nil {
			t.Fatalf("docker logs %s: %v\n%s", short(id), err, tail(string(out), 10))
		}
		for _, line := range strings.Split(string(out), "\n") {
			if strings.Contains(line, "/api.Api/") && strings.Contains(line, "call") {
				counts[id]++
			}
		}
	}
	return counts
}

func delta(now, before map[string]int) map[string]int {
	d := map[string]int{}
	for id, n := range now {
		d[short(id)] = n - before[id]
	}
	for id := range before {
		if _, ok := now[id]; !ok {
			d[short(id)] = -before[id]
		}
	}
	return d
}

func short(id string) string { return id[:min(12, len(id))] }

// getPage fetches the page and checks that it shows what the post's page
// shows: the greeting for Gonzalo, getAll(10) and getStream(5).
func getPage(client *http.Client) (string, error) { return getURL(client, pageURL) }

func getURL(client *http.Client, url string) (string, error) {
	resp, err := client.Get(url)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET /: %s: %s", resp.Status, errorMessages(string(body)))
	}
	for _, want := range []string{"Hello Gonzalo!", "name 1", "name 5", "name 10"} {
		if !strings.Contains(string(body), want) {
			return "", fmt.Errorf("GET /: page lacks %q:\n%s", want, tail(string(body), 40))
		}
	}
	return string(body), nil
}

// errorMessages is what the frontend's error page tells the user, or the
// end of the body when it is not that page.
func errorMessages(body string) string {
	_, list, ok := strings.Cut(body, `id="error-messages">`)
	if !ok {
		return tail(body, 5)
	}
	list, _, _ = strings.Cut(list, "</ul>")
	return strings.Join(strings.Fields(htmlTag.ReplaceAllString(list, " ")), " ")
}

var htmlTag = regexp.MustCompile(`<[^>]*>`)

type loadResult struct {
	ok       int
	failures []string
}

// loadWhile keeps two clients, each with its own connections, requesting the
// page at url while action runs: it starts action once the load is flowing,
// and keeps the load on for a few seconds after it, while the frontends
// settle on the remaining backends.
func loadWhile(t *testing.T, url string, action func()) loadResult {
	t.Helper()
	// maxPerClient only bounds the loop should stop never come: a cluster's
	// scale-up runs a minute or more at about a thousand pages a second.
	const (
		clients      = 2
		maxPerClient = 200000
		after        = 3 * time.Second
	)
	var (
		stop     atomic.Bool
		ok       atomic.Int64
		mu       sync.Mutex
		failures []string
		wg       sync.WaitGroup
	)
	for range clients {
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{}}
		wg.Go(func() {
			defer client.CloseIdleConnections()
			for i := 0; i < maxPerClient && !stop.Load(); i++ {
				if _, err := getURL(client, url); err != nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %v", time.Now().Format("15:04:05.000"), err))
					mu.Unlock()
					continue
				}
				ok.Add(1)
			}
		})
	}
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()

	testkit.Eventually(t, 30*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		return testkit.Failf(ok.Load() >= 10, "load never got going: %d ok, failures %v", ok.Load(), failures)
	})
	action()
	<-time.After(after)
	stop.Store(true)
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	return loadResult{ok: int(ok.Load()), failures: failures}
}

// check fails t for each failed request (the first ten), and when too few
// succeeded for the load to have shown anything.
func (r loadResult) check(t *testing.T, during string) {
	t.Helper()
	t.Logf("%d page requests during %s, %d failed", r.ok+len(r.failures), during, len(r.failures))
	for i, f := range r.failures {
		if i == 10 {
			t.Errorf("... and %d more", len(r.failures)-10)
			break
		}
		t.Errorf("request failed: %s", f)
	}
	if r.ok < 20 {
		t.Errorf("only %d requests succeeded: the load was too light to show anything", r.ok)
	}
}

// builderStageLabel marks the Dockerfile's build stage, which the classic
// builder keeps as an untagged image.
const builderStageLabel = "dev.grpcplay.stage=build"

// pruneStaleImages removes what earlier runs' builds left untagged: builder
// stages (~500 MB each, labelled by the Dockerfile's build stage) and
// superseded test images.
// This run's images, made after buildStart, stay as the next run's cache.
func pruneStaleImages(t *testing.T, repo string, buildStart time.Time) {
	t.Helper()
	until := "until=" + buildStart.UTC().Format(time.RFC3339)
	// An old builder image becomes dangling only once the builder stages made
	// from it are gone: hence a second pass.
	for range 2 {
		for _, label := range []string{builderStageLabel, builderFingerprintLabel, "org.opencontainers.image.version=" + testTag} {
			if out, err := runErr(time.Minute, repo, nil, "docker", "image", "prune", "--force", "--filter", "label="+label, "--filter", until); err != nil {
				t.Logf("docker image prune: %v\n%s", err, tail(out, 5))
			}
		}
	}
}

type imageInspect struct {
	Size   int64
	Config struct {
		User         string
		Entrypoint   []string
		Cmd          []string
		ExposedPorts map[string]struct{}
		Healthcheck  *struct{ Test []string }
	}
}

// checkImage checks what users of the image rely on: small, non-root, a
// healthcheck, and the version stamped at build time.
func checkImage(t *testing.T, repo, image string) {
	out := run(t, 30*time.Second, repo, nil, "docker", "image", "inspect", image)
	var inspected []imageInspect
	if err := json.Unmarshal([]byte(out), &inspected); err != nil || len(inspected) != 1 {
		t.Fatalf("docker image inspect %s: %v\n%s", image, err, tail(out, 10))
	}
	img := inspected[0]
	t.Logf("image %s: %.1f MB", image, float64(img.Size)/1e6)
	if img.Size >= 30e6 {
		t.Errorf("image is %d bytes, want under 30 MB", img.Size)
	}
	if user := img.Config.User; user == "" || user == "0" || user == "root" || strings.HasPrefix(user, "0:") || strings.HasPrefix(user, "root:") {
		t.Errorf("image runs as %q, want a non-root user", user)
	}
	if hc := img.Config.Healthcheck; hc == nil || !slices.Equal(hc.Test, []string{"CMD", "/grpcplay", "healthcheck"}) {
		t.Errorf("healthcheck = %+v, want CMD /grpcplay healthcheck", hc)
	}
	if !slices.Equal(img.Config.Entrypoint, []string{"/grpcplay"}) || len(img.Config.Cmd) == 0 || img.Config.Cmd[0] != "serve" {
		t.Errorf("entrypoint %v cmd %v, want [/grpcplay] [serve ...]", img.Config.Entrypoint, img.Config.Cmd)
	}
	for _, port := range []string{"50051/tcp", "5000/tcp", "8080/tcp"} {
		if _, ok := img.Config.ExposedPorts[port]; !ok {
			t.Errorf("port %s not exposed: %v", port, img.Config.ExposedPorts)
		}
	}
	// --read-only and no shell: the binary alone must be enough.
	version := run(t, time.Minute, repo, nil, "docker", "run", "--rm", "--read-only", "--network", "none", image, "version")
	if !strings.Contains(version, testTag) {
		t.Errorf("`grpcplay version` printed %q, want the VERSION build arg %q", strings.TrimSpace(version), testTag)
	}
}

// Users run Compose v2 (`docker compose`); this machine has docker-compose
// 1.29. The file must be valid for every Compose installed, so each one
// checks it; the engine is not needed for that.
func TestComposeFileIsValidForEachCompose(t *testing.T) {
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, command := range [][]string{{"docker", "compose"}, {"docker-compose"}} {
		if exec.Command(command[0], append(command[1:], "version")...).Run() != nil {
			continue
		}
		args := append(command[1:], "-f", filepath.Join(repo, "docker-compose.yml"), "config", "-q")
		if out, err := exec.Command(command[0], args...).CombinedOutput(); err != nil {
			t.Errorf("%s config: %v\n%s", strings.Join(command, " "), err, out)
		}
		checked++
	}
	if checked == 0 {
		t.Skip("no Compose installed")
	}
}
