package deploy

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"github.com/grpcplay/grpcplay/internal/testkit"
)

// TestKubernetes applies deploy/k8s to the cluster KUBECONFIG names, as a
// user would, and checks under page load what the manifests are for: every
// pod Ready through its probe, calls reaching pods added by a scale-up, no
// failed request during rollouts or a pod's deletion, a backend leaving DNS
// before it stops serving, the restricted Pod Security Standard, and a
// delete that leaves nothing. docs/kubernetes.md says how to run it on
// scripts/k8s-cluster's cluster or on kind.
func TestKubernetes(t *testing.T) {
	if os.Getenv("GRPCPLAY_K8S_TESTS") != "1" {
		t.Skip("set GRPCPLAY_K8S_TESTS=1 and KUBECONFIG to run the Kubernetes tests")
	}
	repo, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	k := newKube(t)
	image := clusterImage(t, repo)
	overlay := writeOverlay(t, repo, k.ns, image)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("state at failure:\n%s\n%s", k.try(time.Minute, "get", "pods,endpointslices", "-o", "wide"),
				k.try(time.Minute, "get", "events", "--sort-by=.lastTimestamp"))
		}
		k.try(5*time.Minute, "delete", "-k", overlay, "--ignore-not-found", "--wait=true", "--timeout=4m")
	})

	steps := []struct {
		name string
		run  func(t *testing.T, k *kube)
	}{
		{"apply -k: every pod Ready, the page served", func(t *testing.T, k *kube) { applyAndServe(t, k, overlay) }},
		{"restricted Pod Security Standard", checkPodSecurity},
		{"scale the backend 3 to 5: new pods get their share at once", scaleBackendUp},
		{"a frontend started while backend pods come up: every pod gets its share", frontendStartedDuringScaleUp},
		{"rollout restart under load: no failed request", rolloutsUnderLoad},
		{"delete a backend pod under load: no failed request", deleteBackendPodUnderLoad},
		{"a stopping backend leaves DNS before it stops serving", leavesDNSBeforeStopping},
		{"delete -k leaves nothing", func(t *testing.T, k *kube) { deleteLeavesNothing(t, k, overlay) }},
	}
	for _, step := range steps {
		if !t.Run(step.name, func(t *testing.T) { step.run(t, k.on(t)) }) {
			return // the later steps build on the cluster state this one left
		}
	}
}

// kube runs kubectl against KUBECONFIG's cluster, in the test's namespace.
type kube struct {
	t       *testing.T
	kubectl string
	ns      string
}

func newKube(t *testing.T) *kube {
	t.Helper()
	if os.Getenv("KUBECONFIG") == "" {
		t.Fatal("GRPCPLAY_K8S_TESTS=1 but KUBECONFIG is not set: point it at the cluster to test")
	}
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Fatal("GRPCPLAY_K8S_TESTS=1 but kubectl is not on PATH")
	}
	suffix := make([]byte, 3)
	if _, err := rand.Read(suffix); err != nil {
		t.Fatal(err)
	}
	k := &kube{t: t, kubectl: kubectl, ns: "grpcplay-test-" + hex.EncodeToString(suffix)}
	k.run(time.Minute, "version")
	return k
}

// on is k for subtest t, so that a failure ends t and not its parent.
func (k *kube) on(t *testing.T) *kube { return &kube{t: t, kubectl: k.kubectl, ns: k.ns} }

func (k *kube) args(args []string) []string { return append([]string{"--namespace", k.ns}, args...) }

func (k *kube) run(timeout time.Duration, args ...string) string {
	k.t.Helper()
	out, err := runErr(timeout, "", nil, k.kubectl, k.args(args)...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, tail(out, 20))
	}
	return out
}

// try runs kubectl for cleanup and diagnostics, where a failure is only logged.
func (k *kube) try(timeout time.Duration, args ...string) string {
	out, err := runErr(timeout, "", nil, k.kubectl, k.args(args)...)
	if err != nil {
		k.t.Logf("kubectl %s: %v\n%s", strings.Join(args, " "), err, tail(out, 10))
	}
	return out
}

func (k *kube) jsonInto(v any, args ...string) {
	k.t.Helper()
	out, err := runErr(time.Minute, "", nil, k.kubectl, k.args(append(args, "-o", "json"))...)
	if err != nil {
		k.t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, tail(out, 10))
	}
	if err := json.Unmarshal([]byte(out), v); err != nil {
		k.t.Fatalf("kubectl %s: %v", strings.Join(args, " "), err)
	}
}

// clusterImage is the image the Dockerfile builds, copied into the cluster
// by $GRPCPLAY_K8S_LOAD (such as `scripts/k8s-cluster load` or `kind load
// docker-image`); or $GRPCPLAY_K8S_IMAGE, an image the cluster can pull.
func clusterImage(t *testing.T, repo string) string {
	t.Helper()
	if image := os.Getenv("GRPCPLAY_K8S_IMAGE"); image != "" {
		return image
	}
	load := strings.Fields(os.Getenv("GRPCPLAY_K8S_LOAD"))
	if len(load) == 0 {
		t.Fatal("set GRPCPLAY_K8S_LOAD to the command that copies a Docker image into the cluster, or GRPCPLAY_K8S_IMAGE to an image it can pull")
	}
	// The compose test's build, with the same arguments: after it, the
	// layer cache makes this one free.
	image := "grpcplay:" + testTag
	start := time.Now()
	run(t, 15*time.Minute, repo, nil, "docker", "build", "--force-rm", "-q",
		"--build-arg", "GO_IMAGE="+goBuilderImage(t, repo), "--build-arg", "VERSION="+testTag, "-t", image, ".")
	pruneStaleImages(t, repo, start)
	run(t, 5*time.Minute, repo, nil, load[0], append(load[1:], image)...)
	t.Logf("built %s and loaded it into the cluster in %v", image, time.Since(start).Round(time.Millisecond))
	return image
}

// writeOverlay writes the only overlay the test needs over the base: a
// namespace of its own that enforces the restricted Pod Security Standard,
// and the image to run.
func writeOverlay(t *testing.T, repo, ns, image string) string {
	t.Helper()
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(repo, "deploy", k8sDir))
	if err != nil {
		t.Fatal(err)
	}
	name, tag, _ := strings.Cut(image, ":")
	files := map[string]string{
		"kustomization.yaml": fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
resources:
  - namespace.yaml
  - %s
images:
  - name: grpcplay
    newName: %s
    newTag: %q
`, ns, base, name, tag),
		"namespace.yaml": fmt.Sprintf(`apiVersion: v1
kind: Namespace
metadata:
  name: %s
  labels:
    pod-security.kubernetes.io/enforce: restricted
    pod-security.kubernetes.io/enforce-version: latest
    pod-security.kubernetes.io/warn: restricted
`, ns),
	}
	for file, text := range files {
		if err := os.WriteFile(filepath.Join(dir, file), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// replicas are the base's replica counts.
var replicas = map[string]int{"backend": 3, "frontend": 2}

func applyAndServe(t *testing.T, k *kube, overlay string) {
	start := time.Now()
	k.run(2*time.Minute, "apply", "-k", overlay)
	// rollout status alone may report a Deployment that its controller has
	// just created as rolled out; the pods themselves tell.
	for _, d := range []string{"backend", "frontend"} {
		k.run(5*time.Minute, "rollout", "status", "deployment/"+d, "--timeout=4m")
		k.waitSettled(d, replicas[d])
	}
	t.Logf("kubectl apply -k to every pod Ready: %v", time.Since(start).Round(100*time.Millisecond))
	for _, component := range []string{"backend", "frontend"} {
		pods := k.pods(component)
		if len(pods) != replicas[component] {
			t.Fatalf("%d %s pods, want %d", len(pods), component, replicas[component])
		}
		for _, p := range pods {
			if !p.ready() {
				t.Errorf("pod %s is not Ready", p.Metadata.Name)
			}
			probe := p.Spec.Containers[0].ReadinessProbe
			if probe.GRPC == nil && probe.HTTPGet == nil {
				t.Errorf("pod %s: readiness probe is neither gRPC nor HTTP", p.Metadata.Name)
			}
		}
	}
	client := &http.Client{Timeout: 10 * time.Second}
	defer client.CloseIdleConnections()
	body, err := getURL(client, k.pageURL())
	if err != nil {
		t.Fatalf("the page through the frontend Service: %v", err)
	}
	t.Logf("GET %s answered %d bytes", k.pageURL(), len(body))
}

type pod struct {
	Metadata struct {
		Name              string
		DeletionTimestamp *time.Time
	}
	Spec struct {
		Containers []struct {
			ReadinessProbe struct {
				GRPC    *struct{ Port int }
				HTTPGet *struct{ Path string }
			}
		}
	}
	Status struct {
		PodIP             string
		Conditions        []podCondition
		ContainerStatuses []struct {
			State struct {
				Running *struct{ StartedAt time.Time }
			}
		}
	}
}

type podCondition struct {
	Type, Status       string
	LastTransitionTime time.Time
}

func (p pod) ready() bool {
	_, ok := p.readySince()
	return ok && p.Metadata.DeletionTimestamp == nil
}

// readySince is when the pod last turned Ready, to the second.
func (p pod) readySince() (time.Time, bool) {
	i := slices.IndexFunc(p.Status.Conditions, func(c podCondition) bool { return c.Type == "Ready" && c.Status == "True" })
	if i < 0 {
		return time.Time{}, false
	}
	return p.Status.Conditions[i].LastTransitionTime, true
}

func (p pod) running() bool {
	return len(p.Status.ContainerStatuses) > 0 && p.Status.ContainerStatuses[0].State.Running != nil
}

// pods lists the component's pods, terminating ones included.
func (k *kube) pods(component string) []pod {
	var list struct{ Items []pod }
	k.jsonInto(&list, "get", "pods", "-l", "app.kubernetes.io/component="+component)
	return list.Items
}

func (k *kube) readyPods(component string) []pod {
	return slices.DeleteFunc(k.pods(component), func(p pod) bool { return !p.ready() })
}

// serviceIP is a Service's virtual IP: the test reaches the frontend as
// other pods do, through kube-proxy, so that rollouts are seen as they are.
func (k *kube) serviceIP(ns, name string) string {
	k.t.Helper()
	ip := strings.TrimSpace(run(k.t, time.Minute, "", nil, k.kubectl, "--namespace", ns, "get", "service", name, "-o", "jsonpath={.spec.clusterIP}"))
	if net.ParseIP(ip) == nil {
		k.t.Fatalf("service %s/%s has no cluster IP (%q)", ns, name, ip)
	}
	return ip
}

func (k *kube) pageURL() string {
	if u := os.Getenv("GRPCPLAY_K8S_PAGE_URL"); u != "" {
		return u
	}
	return "http://" + net.JoinHostPort(k.serviceIP(k.ns, "frontend"), "5000") + "/"
}

// callCounts reads each backend pod's count of finished api.Api calls from
// its metrics port, through the API server's pod proxy.
func (k *kube) callCounts(pods []pod) map[string]int {
	k.t.Helper()
	counts := map[string]int{}
	for _, p := range pods {
		out := k.run(time.Minute, "get", "--raw", fmt.Sprintf("/api/v1/namespaces/%s/pods/%s:9464/proxy/metrics", k.ns, p.Metadata.Name))
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "grpc_server_handled_total{") && strings.Contains(line, `grpc_service="api.Api"`) {
				var n float64
				fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &n)
				counts[p.Metadata.Name] += int(n)
			}
		}
	}
	return counts
}

// scaleBackendUp scales the backend from 3 to 5 under page load. The
// frontends look the headless Service up every --backend-refresh, so each
// new pod gets its share of the calls within seconds of turning Ready,
// rather than when the frontends' connections reach --max-connection-age.
func scaleBackendUp(t *testing.T, k *kube) {
	old := podNames(k.readyPods("backend"))
	loadWhile(t, k.pageURL(), func() {
		k.run(time.Minute, "scale", "deployment/backend", "--replicas=5")
		k.run(3*time.Minute, "rollout", "status", "deployment/backend", "--timeout=2m")
		k.waitSettled("backend", 5)
		k.checkBalance(t, old)
	}).check(t, "the scale-up")
}

// frontendStartedDuringScaleUp starts a frontend pod while backend pods are
// still coming up: its first lookup finds only some of them, and it must
// find the others as they turn Ready. (Before --backend-refresh, such a
// frontend left a pod nearly idle until its connections aged out.)
func frontendStartedDuringScaleUp(t *testing.T, k *kube) {
	k.run(time.Minute, "scale", "deployment/backend", "--replicas=3")
	k.waitSettled("backend", 3)
	oldBackends := podNames(k.readyPods("backend"))
	oldFrontends := podNames(k.pods("frontend"))
	loadWhile(t, k.pageURL(), func() {
		k.run(time.Minute, "rollout", "restart", "deployment/frontend")
		// The backend is scaled once a new frontend runs, so that it has
		// started before every backend pod is Ready.
		var started string
		testkit.Eventually(t, 2*time.Minute, func() error {
			for _, p := range k.pods("frontend") {
				if !slices.Contains(oldFrontends, p.Metadata.Name) && p.running() {
					started = p.Metadata.Name
				}
			}
			return testkit.Failf(started != "", "no new frontend pod running yet")
		})
		k.run(time.Minute, "scale", "deployment/backend", "--replicas=5")
		k.run(3*time.Minute, "rollout", "status", "deployment/backend", "--timeout=2m")
		k.waitSettled("backend", 5)
		t.Logf("frontend pod %s was running before the backend was scaled to 5", started)
		// The frontend's rollout may still be under way: which frontend
		// makes a call does not change where it goes.
		k.checkBalance(t, oldBackends)
		k.run(6*time.Minute, "rollout", "status", "deployment/frontend", "--timeout=5m")
		k.waitSettled("frontend", replicas["frontend"])
	}).check(t, "the frontend's start and the scale-up")
}

// Balance: with T the moment the last new backend pod turned Ready, each
// pod's share of the calls made between T+balancedAfter and
// T+balancedAfter+balanceWindow is within balanceTolerance of an equal share.
const (
	balancedAfter    = 10 * time.Second
	balanceWindow    = 20 * time.Second
	balanceTolerance = 0.25
)

// checkBalance counts each Ready backend pod's calls from T, the moment the
// last pod not named in old turned Ready, and checks the balance window. The
// window is a span of time by definition: the counts are sampled every
// second or so until it ends, so the log also shows how soon the calls were
// spread. It logs the cluster DNS queries a minute over the window.
func (k *kube) checkBalance(t *testing.T, old []string) {
	t.Helper()
	pods := k.readyPods("backend")
	lastReady := lastNewReady(t, pods, old)
	if late := time.Since(lastReady) - balancedAfter; late > 0 {
		t.Fatalf("counting began %v after T+%v: the window would miss its start", late.Round(100*time.Millisecond), balancedAfter)
	}
	type sample struct {
		at      time.Duration // since T
		counts  map[string]int
		queries float64
	}
	take := func() sample {
		counts := k.callCounts(pods)
		return sample{at: time.Since(lastReady), counts: counts, queries: k.dnsQueries()}
	}
	samples := []sample{take()}
	first, last := -1, -1 // the samples that open and close the window
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for last < 0 {
		<-tick.C
		samples = append(samples, take())
		i := len(samples) - 1
		switch {
		case first < 0 && samples[i].at >= balancedAfter:
			first = i
		case first >= 0 && samples[i].at >= balancedAfter+balanceWindow:
			last = i
		}
	}
	start, end := samples[first], samples[last]

	// When the calls first reached every pod. (How evenly, interval by
	// interval, is too noisy to say: each sample reads the pods one after
	// another, a few hundred milliseconds apart.)
	reached := slices.IndexFunc(samples, func(s sample) bool {
		return !slices.ContainsFunc(pods, func(p pod) bool { return s.counts[p.Metadata.Name] == samples[0].counts[p.Metadata.Name] })
	})
	reachedAt := "never"
	if reached >= 0 {
		reachedAt = "T+" + samples[reached].at.Round(100*time.Millisecond).String()
	}
	t.Logf("T (the last new pod Ready) = %s; per-pod calls in the first interval, T+%v..T+%v: %v; every pod called by %s",
		lastReady.Format("15:04:05"), samples[0].at.Round(100*time.Millisecond), samples[1].at.Round(100*time.Millisecond),
		since(samples[1].counts, samples[0].counts), reachedAt)
	window := since(end.counts, start.counts)
	minutes := (end.at - start.at).Minutes()
	t.Logf("per-pod calls from T+%v to T+%v: %v", start.at.Round(100*time.Millisecond), end.at.Round(100*time.Millisecond), window)
	if end.queries >= 0 && start.queries >= 0 {
		t.Logf("cluster DNS answered %.0f queries a minute over the window, %d frontends",
			(end.queries-start.queries)/minutes, replicas["frontend"])
	}
	if why := unbalanced(window); why != "" {
		t.Errorf("calls from T+%v to T+%v not balanced: %s", start.at.Round(100*time.Millisecond), end.at.Round(100*time.Millisecond), why)
	}
}

// lastNewReady is when the last of pods not named in old turned Ready.
func lastNewReady(t *testing.T, pods []pod, old []string) time.Time {
	t.Helper()
	var lastReady time.Time
	for _, p := range pods {
		if readyAt, _ := p.readySince(); !slices.Contains(old, p.Metadata.Name) && readyAt.After(lastReady) {
			lastReady = readyAt
		}
	}
	if lastReady.IsZero() {
		t.Fatalf("no new backend pod among %v", podNames(pods))
	}
	return lastReady
}

// unbalanced says which pods' shares of counts are not within
// balanceTolerance of an equal share, or "" when all are.
func unbalanced(counts map[string]int) string {
	total := 0
	for _, n := range counts {
		total += n
	}
	if total == 0 {
		return "no calls"
	}
	fair := float64(total) / float64(len(counts))
	var off []string
	for name, n := range counts {
		if r := float64(n) / fair; r < 1-balanceTolerance || r > 1+balanceTolerance {
			off = append(off, fmt.Sprintf("%s has %.2f× its share", name, r))
		}
	}
	slices.Sort(off)
	return strings.Join(off, ", ")
}

func podNames(pods []pod) []string {
	var names []string
	for _, p := range pods {
		names = append(names, p.Metadata.Name)
	}
	return names
}

// dnsQueries is how many queries the cluster's DNS has answered
// (coredns_dns_requests_total, from CoreDNS's prometheus plugin on port
// 9153, as kubeadm and kind configure it), or -1 when it does not say.
func (k *kube) dnsQueries() float64 {
	var list struct{ Items []pod }
	out, err := runErr(time.Minute, "", nil, k.kubectl, "--namespace", "kube-system", "get", "pods", "-l", "k8s-app=kube-dns", "-o", "json")
	if err != nil || json.Unmarshal([]byte(out), &list) != nil {
		return -1
	}
	total := -1.0
	for _, p := range list.Items {
		out, err := runErr(time.Minute, "", nil, k.kubectl, "get", "--raw", fmt.Sprintf("/api/v1/namespaces/kube-system/pods/%s:9153/proxy/metrics", p.Metadata.Name))
		if err != nil {
			return -1
		}
		for _, line := range strings.Split(out, "\n") {
			if strings.HasPrefix(line, "coredns_dns_requests_total{") {
				var n float64
				fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &n)
				total = max(total, 0) + n
			}
		}
	}
	return total
}

// since is each pod's count minus its baseline.
func since(counts, baseline map[string]int) map[string]int {
	d := map[string]int{}
	for name, n := range counts {
		d[name] = n - baseline[name]
	}
	return d
}

// waitSettled waits until the component has want pods, all Ready and none
// terminating: a rollout's old pods are still draining when `rollout
// status` returns, and the load must go on until they are gone.
func (k *kube) waitSettled(component string, want int) {
	k.t.Helper()
	testkit.Eventually(k.t, 2*time.Minute, func() error {
		pods := k.pods(component)
		ready := len(slices.DeleteFunc(slices.Clone(pods), func(p pod) bool { return !p.ready() }))
		return testkit.Failf(len(pods) == want && ready == want, "%s: %d pods, %d Ready; want %d, none terminating", component, len(pods), ready, want)
	})
}

func rolloutsUnderLoad(t *testing.T, k *kube) {
	for _, d := range []string{"backend", "frontend"} {
		loadWhile(t, k.pageURL(), func() {
			start := time.Now()
			k.run(time.Minute, "rollout", "restart", "deployment/"+d)
			k.run(6*time.Minute, "rollout", "status", "deployment/"+d, "--timeout=5m")
			k.waitSettled(d, map[string]int{"backend": 5, "frontend": 2}[d])
			t.Logf("rollout restart deployment/%s took %v", d, time.Since(start).Round(100*time.Millisecond))
		}).check(t, "the rollout of "+d)
	}
}

func deleteBackendPodUnderLoad(t *testing.T, k *kube) {
	pods := k.readyPods("backend")
	if len(pods) == 0 {
		t.Fatal("no backend pod Ready")
	}
	victim := pods[0].Metadata.Name
	loadWhile(t, k.pageURL(), func() {
		start := time.Now()
		k.run(2*time.Minute, "delete", "pod", victim, "--wait=true", "--timeout=90s")
		k.run(3*time.Minute, "rollout", "status", "deployment/backend", "--timeout=2m")
		k.waitSettled("backend", 5)
		t.Logf("deleting pod %s and its replacement Ready took %v", victim, time.Since(start).Round(100*time.Millisecond))
	}).check(t, "the deletion of "+victim)
}

// leavesDNSBeforeStopping deletes a backend pod and watches two things at
// once: the headless Service's DNS answers, through the cluster's DNS
// Service, and the pod's own gRPC health, on a new connection each time.
// Its address must leave the answers before the pod stops serving, or a
// frontend that resolves in between would pick a pod that refuses it.
func leavesDNSBeforeStopping(t *testing.T, k *kube) {
	pods := k.readyPods("backend")
	if len(pods) == 0 {
		t.Fatal("no backend pod Ready")
	}
	victim := pods[0]
	dns := net.JoinHostPort(k.serviceIP("kube-system", "kube-dns"), "53")
	resolver := &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, dns)
	}}
	name := "backend." + k.ns + ".svc.cluster.local"
	inDNS := func() bool {
		ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
		defer cancel()
		addrs, err := resolver.LookupHost(ctx, name)
		if err != nil {
			t.Fatalf("resolving %s at %s: %v", name, dns, err)
		}
		return slices.Contains(addrs, victim.Status.PodIP)
	}
	if !inDNS() {
		t.Fatalf("%s (%s) is not in the DNS answers for %s before its deletion", victim.Metadata.Name, victim.Status.PodIP, name)
	}
	target := net.JoinHostPort(victim.Status.PodIP, "50051")
	if err := healthCheck(t, target); err != nil {
		t.Fatalf("%s before its deletion: %v", victim.Metadata.Name, err)
	}

	start := time.Now()
	k.run(time.Minute, "delete", "pod", victim.Metadata.Name, "--wait=false")
	var leftDNS, stopped time.Duration
	testkit.Eventually(t, 60*time.Second, func() error {
		if leftDNS == 0 && !inDNS() {
			leftDNS = time.Since(start)
		}
		if stopped == 0 && healthCheck(t, target) != nil {
			stopped = time.Since(start)
		}
		return testkit.Failf(leftDNS > 0 && stopped > 0, "after %v: left DNS at %v, stopped serving at %v", time.Since(start).Round(time.Millisecond), leftDNS, stopped)
	})
	t.Logf("%s left the DNS answers %v after its deletion began and stopped serving after %v",
		victim.Metadata.Name, leftDNS.Round(10*time.Millisecond), stopped.Round(10*time.Millisecond))
	// A frontend that got the last stale answer dials at once; the margin is
	// for that dial and for the jitter of both clocks (DNS cache expiry, the
	// preStop sleep), so that passing is not luck.
	const margin = 2 * time.Second
	if stopped-leftDNS < margin {
		t.Errorf("the pod stopped serving %v after its deletion began, only %v after it left DNS (%v); want at least %v", stopped, stopped-leftDNS, leftDNS, margin)
	}
	k.run(3*time.Minute, "rollout", "status", "deployment/backend", "--timeout=2m")
}

// healthCheck asks target's grpc.health.v1 on a connection of its own, as a
// frontend that has just resolved the name would connect.
func healthCheck(t *testing.T, target string) error {
	conn, err := grpc.NewClient("passthrough:///"+target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return err
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	reply, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		return err
	}
	return testkit.Failf(reply.GetStatus() == healthpb.HealthCheckResponse_SERVING, "health: %v", reply.GetStatus())
}

func checkPodSecurity(t *testing.T, k *kube) {
	labels := k.run(time.Minute, "get", "namespace", k.ns, "-o", "jsonpath={.metadata.labels.pod-security\\.kubernetes\\.io/enforce}")
	if labels != "restricted" {
		t.Fatalf("namespace %s enforces %q, want restricted", k.ns, labels)
	}
	for _, d := range []string{"backend", "frontend"} {
		var dep struct {
			Spec   struct{ Replicas int }
			Status struct{ ReadyReplicas int }
		}
		k.jsonInto(&dep, "get", "deployment", d)
		if dep.Status.ReadyReplicas != dep.Spec.Replicas {
			t.Errorf("deployment/%s: %d of %d pods admitted and Ready", d, dep.Status.ReadyReplicas, dep.Spec.Replicas)
		}
	}
	if events := k.run(time.Minute, "get", "events", "--field-selector", "reason=FailedCreate", "-o", "name"); strings.TrimSpace(events) != "" {
		t.Errorf("pods were refused: %s", events)
	}
	// A pod as most examples write it, with no security context at all (so
	// root allowed, every default capability, no seccomp), is refused at
	// admission. A server-side dry run: nothing is created.
	rogue := `{"apiVersion":"v1","kind":"Pod","metadata":{"name":"rogue"},"spec":{"containers":[{"name":"c","image":"grpcplay:` + testTag + `"}]}}`
	cmd := exec.Command(k.kubectl, k.args([]string{"apply", "--dry-run=server", "-f", "-"})...)
	cmd.Stdin = strings.NewReader(rogue)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), `violates PodSecurity "restricted`) {
		t.Errorf("a pod without a security context was not refused by PodSecurity admission: %v\n%s", err, out)
	} else {
		t.Logf("a pod without a security context is refused: %s", strings.TrimSpace(tail(string(out), 2)))
	}
}

func deleteLeavesNothing(t *testing.T, k *kube, overlay string) {
	start := time.Now()
	k.run(5*time.Minute, "delete", "-k", overlay, "--wait=true", "--timeout=4m")
	t.Logf("kubectl delete -k took %v", time.Since(start).Round(100*time.Millisecond))
	if out, err := runErr(time.Minute, "", nil, k.kubectl, "get", "namespace", k.ns); err == nil || !strings.Contains(out, "NotFound") {
		t.Errorf("namespace %s is still there: %s", k.ns, out)
	}
	left := k.run(time.Minute, "get", "all,pdb,endpointslices,configmaps,secrets,serviceaccounts", "--all-namespaces",
		"-l", "app.kubernetes.io/part-of=grpcplay", "-o", "name")
	if strings.TrimSpace(left) != "" {
		t.Errorf("left after delete -k:\n%s", left)
	}
}
