package deploy

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"
)

// What the grpcplay binary listens on and serves by default (internal/cli).
// The manifests rely on these, so a change there must show up here.
const (
	defaultGRPCPort  = 50051
	defaultHTTPPort  = 5000
	defaultRESTPort  = 8080
	livenessPath     = "/healthz"
	readinessPath    = "/readyz"
	defaultGrace     = 20 * time.Second
	backendHostValue = "backend"
	nonRootUID       = 65532
)

const k8sDir = "k8s"

// kustomization is the part of kustomize's Kustomization that the base uses;
// decoding strictly into it catches a misspelt field as it would for the
// k8s.io/api types.
type kustomization struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Resources  []string `json:"resources"`
	Labels     []struct {
		Pairs            map[string]string `json:"pairs"`
		IncludeSelectors bool              `json:"includeSelectors,omitempty"`
		IncludeTemplates bool              `json:"includeTemplates,omitempty"`
	} `json:"labels"`
	Images []kustomizeImage `json:"images"`
}

type kustomizeImage struct {
	Name    string `json:"name"`
	NewName string `json:"newName,omitempty"`
	NewTag  string `json:"newTag,omitempty"`
	Digest  string `json:"digest,omitempty"`
}

// manifests holds every object of the base, by kind and name.
type manifests struct {
	deployments map[string]*appsv1.Deployment
	services    map[string]*corev1.Service
	pdbs        map[string]*policyv1.PodDisruptionBudget
}

func loadBase(t *testing.T) manifests {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(k8sDir, "kustomization.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var k kustomization
	if err := yaml.UnmarshalStrict(raw, &k); err != nil {
		t.Fatalf("kustomization.yaml: %v", err)
	}
	if k.APIVersion != "kustomize.config.k8s.io/v1beta1" || k.Kind != "Kustomization" {
		t.Fatalf("kustomization.yaml: apiVersion/kind = %s/%s", k.APIVersion, k.Kind)
	}
	if !slices.ContainsFunc(k.Images, func(img kustomizeImage) bool { return img.Name == "grpcplay" }) {
		t.Error("kustomization.yaml: no images entry for grpcplay, so overlays cannot set the image")
	}

	// Every manifest in the directory is a resource of the base, and the
	// other way round: a file left out would silently not be deployed.
	files, err := filepath.Glob(filepath.Join(k8sDir, "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var onDisk []string
	for _, f := range files {
		if name := filepath.Base(f); name != "kustomization.yaml" {
			onDisk = append(onDisk, name)
		}
	}
	listed := slices.Sorted(slices.Values(k.Resources))
	if !slices.Equal(onDisk, listed) {
		t.Fatalf("kustomization.yaml resources %v, but the directory holds %v", listed, onDisk)
	}

	m := manifests{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
	}
	for _, name := range listed {
		raw, err := os.ReadFile(filepath.Join(k8sDir, name))
		if err != nil {
			t.Fatal(err)
		}
		m.add(t, name, raw)
	}
	return m
}

// add decodes one manifest strictly, by its kind: an unknown or misplaced
// field fails here rather than being dropped by the API server.
func (m manifests) add(t *testing.T, source string, raw []byte) {
	t.Helper()
	var meta metav1.TypeMeta
	if err := yaml.Unmarshal(raw, &meta); err != nil {
		t.Fatalf("%s: %v", source, err)
	}
	decode := func(into any) {
		if err := yaml.UnmarshalStrict(raw, into); err != nil {
			t.Fatalf("%s: %v", source, err)
		}
	}
	switch gvk := meta.APIVersion + "/" + meta.Kind; gvk {
	case "apps/v1/Deployment":
		var d appsv1.Deployment
		decode(&d)
		m.deployments[d.Name] = &d
	case "v1/Service":
		var s corev1.Service
		decode(&s)
		m.services[s.Name] = &s
	case "policy/v1/PodDisruptionBudget":
		var p policyv1.PodDisruptionBudget
		decode(&p)
		m.pdbs[p.Name] = &p
	default:
		t.Fatalf("%s: unexpected %s; add it to the test", source, gvk)
	}
}

func TestKustomizeBase(t *testing.T) {
	m := loadBase(t)
	for _, name := range []string{"backend", "frontend"} {
		if m.deployments[name] == nil || m.services[name] == nil || m.pdbs[name] == nil {
			t.Fatalf("%s: want a Deployment, a Service and a PodDisruptionBudget", name)
		}
	}

	t.Run("backend", func(t *testing.T) { checkBackendManifests(t, m) })
	t.Run("frontend", func(t *testing.T) { checkFrontendManifests(t, m) })
}

func checkFrontendManifests(t *testing.T, m manifests) {
	d, svc := m.deployments["frontend"], m.services["frontend"]
	if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
		t.Errorf("replicas = %v, want at least 2 so that a rollout or drain keeps one", d.Spec.Replicas)
	}
	c := onlyContainer(t, d)
	checkGoMemoryLimit(t, c)
	if got := c.Args; len(got) == 0 || got[0] != "frontend" {
		t.Errorf("args = %v, want the frontend subcommand", got)
	}
	if i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "BACKEND_HOST" }); i < 0 || c.Env[i].Value != backendHostValue {
		t.Errorf("env BACKEND_HOST missing or not %q: the frontend would dial localhost", backendHostValue)
	}
	if m.services[backendHostValue] == nil {
		t.Errorf("BACKEND_HOST=%s names no Service", backendHostValue)
	}
	// Cluster DNS caches answers 5 s: looked up every 3 s or less, a new pod
	// is called within 10 s of turning Ready.
	if refresh := durationArg(t, c.Args, "backend-refresh", 0); refresh <= 0 || refresh > 3*time.Second {
		t.Errorf("--backend-refresh = %v, want (0, 3s]: a new backend pod would wait for --max-connection-age", refresh)
	}
	port := containerPort(t, c, "http", defaultHTTPPort)
	checkServicePort(t, svc, port, defaultHTTPPort)
	for probeName, want := range map[string]struct {
		probe *corev1.Probe
		path  string
	}{
		"readiness": {c.ReadinessProbe, readinessPath},
		"liveness":  {c.LivenessProbe, livenessPath},
	} {
		p := want.probe
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s probe = %+v, want an HTTP GET", probeName, p)
			continue
		}
		if p.HTTPGet.Path != want.path {
			t.Errorf("%s probe path = %q, want %q", probeName, p.HTTPGet.Path, want.path)
		}
		if !portMatches(p.HTTPGet.Port, port) {
			t.Errorf("%s probe port = %s, want %d or %q", probeName, p.HTTPGet.Port.String(), port.ContainerPort, port.Name)
		}
	}
	checkPod(t, d, c)
	checkSelectors(t, d, svc, m.pdbs["frontend"])
}

// checkGoMemoryLimit: the Go runtime's soft limit is the container's memory
// limit, so that with the servers' GOGC of 200 the GC works harder as the
// heap nears it.
func checkGoMemoryLimit(t *testing.T, c *corev1.Container) {
	t.Helper()
	i := slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "GOMEMLIMIT" })
	if i < 0 || c.Env[i].ValueFrom == nil || c.Env[i].ValueFrom.ResourceFieldRef == nil ||
		c.Env[i].ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
		t.Errorf("%s: want env GOMEMLIMIT from resourceFieldRef limits.memory", c.Name)
	}
	if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
		t.Errorf("%s: no memory limit for GOMEMLIMIT to follow", c.Name)
	}
}

func checkBackendManifests(t *testing.T, m manifests) {
	d, svc := m.deployments["backend"], m.services["backend"]
	if d.Spec.Replicas == nil || *d.Spec.Replicas != 3 {
		t.Errorf("replicas = %v, want 3", d.Spec.Replicas)
	}
	if svc.Spec.ClusterIP != corev1.ClusterIPNone {
		t.Errorf("Service clusterIP = %q, want None: round_robin needs every pod's address", svc.Spec.ClusterIP)
	}
	c := onlyContainer(t, d)
	checkGoMemoryLimit(t, c)
	if got := c.Args; len(got) == 0 || got[0] != "backend" {
		t.Errorf("args = %v, want the backend subcommand", got)
	}
	port := containerPort(t, c, "grpc", defaultGRPCPort)
	checkServicePort(t, svc, port, defaultGRPCPort)
	checkServicePort(t, svc, containerPort(t, c, "rest", defaultRESTPort), defaultRESTPort)
	for probeName, p := range map[string]*corev1.Probe{"readiness": c.ReadinessProbe, "liveness": c.LivenessProbe} {
		if p == nil || p.GRPC == nil {
			t.Errorf("%s probe = %+v, want a native gRPC probe", probeName, p)
			continue
		}
		if p.GRPC.Port != defaultGRPCPort {
			t.Errorf("%s probe port = %d, want %d", probeName, p.GRPC.Port, defaultGRPCPort)
		}
		// The server's overall health ("") is what Shutdown turns NOT_SERVING.
		if p.GRPC.Service != nil && *p.GRPC.Service != "" {
			t.Errorf("%s probe service = %q, want the server's overall health", probeName, *p.GRPC.Service)
		}
	}
	checkPod(t, d, c)
	checkSelectors(t, d, svc, m.pdbs["backend"])
}

func onlyContainer(t *testing.T, d *appsv1.Deployment) *corev1.Container {
	t.Helper()
	if n := len(d.Spec.Template.Spec.Containers); n != 1 {
		t.Fatalf("%s: %d containers, want 1", d.Name, n)
	}
	c := &d.Spec.Template.Spec.Containers[0]
	if c.Image != "grpcplay" && !strings.HasPrefix(c.Image, "grpcplay:") {
		t.Errorf("%s: image %q is not the one kustomization.yaml's images entry rewrites", d.Name, c.Image)
	}
	return c
}

func containerPort(t *testing.T, c *corev1.Container, name string, number int32) corev1.ContainerPort {
	t.Helper()
	i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
	if i < 0 {
		t.Fatalf("%s: no container port named %q", c.Name, name)
	}
	if p := c.Ports[i]; p.ContainerPort != number {
		t.Errorf("%s: port %s = %d, want the binary's default %d", c.Name, name, p.ContainerPort, number)
	}
	return c.Ports[i]
}

func portMatches(ref intstr.IntOrString, port corev1.ContainerPort) bool {
	if ref.Type == intstr.String {
		return ref.StrVal == port.Name
	}
	return ref.IntVal == port.ContainerPort
}

func checkServicePort(t *testing.T, svc *corev1.Service, target corev1.ContainerPort, number int32) {
	t.Helper()
	i := slices.IndexFunc(svc.Spec.Ports, func(p corev1.ServicePort) bool { return p.Name == target.Name })
	if i < 0 {
		t.Fatalf("Service %s: no port named %q", svc.Name, target.Name)
	}
	p := svc.Spec.Ports[i]
	if p.Port != number {
		t.Errorf("Service %s: port %d, want %d", svc.Name, p.Port, number)
	}
	if !portMatches(p.TargetPort, target) {
		t.Errorf("Service %s: targetPort %s does not name container port %s/%d", svc.Name, p.TargetPort.String(), target.Name, target.ContainerPort)
	}
	if p.Name != target.Name {
		t.Errorf("Service %s: port name %q, want %q", svc.Name, p.Name, target.Name)
	}
}

// checkSelectors makes sure that the Deployment, its Service and its budget
// all pick exactly the pods of this component.
func checkSelectors(t *testing.T, d *appsv1.Deployment, svc *corev1.Service, pdb *policyv1.PodDisruptionBudget) {
	t.Helper()
	podLabels := labels.Set(d.Spec.Template.Labels)
	deploySelector, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
	if err != nil || deploySelector.Empty() {
		t.Fatalf("%s: bad Deployment selector %v: %v", d.Name, d.Spec.Selector, err)
	}
	if !deploySelector.Matches(podLabels) {
		t.Errorf("%s: Deployment selector %s does not match its pod labels %v", d.Name, deploySelector, podLabels)
	}
	if len(svc.Spec.Selector) == 0 || !labels.SelectorFromSet(svc.Spec.Selector).Matches(podLabels) {
		t.Errorf("Service %s: selector %v does not match the pod labels %v", svc.Name, svc.Spec.Selector, podLabels)
	}
	pdbSelector, err := metav1.LabelSelectorAsSelector(pdb.Spec.Selector)
	if err != nil || pdbSelector.Empty() || !pdbSelector.Matches(podLabels) {
		t.Errorf("PodDisruptionBudget %s: selector %v does not match the pod labels %v (%v)", pdb.Name, pdb.Spec.Selector, podLabels, err)
	}
	// A selector that also matched the other component's pods would send
	// HTTP to the backend or gRPC to the frontend.
	other := map[string]string{"backend": "frontend", "frontend": "backend"}[d.Name]
	otherLabels := labels.Merge(podLabels, labels.Set{"app.kubernetes.io/component": other})
	if labels.SelectorFromSet(svc.Spec.Selector).Matches(otherLabels) || deploySelector.Matches(otherLabels) {
		t.Errorf("%s: selectors also match the %s pods", d.Name, other)
	}
}

// checkPod covers what every grpcplay pod needs: no privileges, no writes,
// bounded resources, and a shutdown that drains before the SIGKILL.
// checkSecurity checks that the pod runs as the image's non-root user with
// the least privileges.
func checkSecurity(t *testing.T, d *appsv1.Deployment, c *corev1.Container) {
	t.Helper()
	spec := d.Spec.Template.Spec
	ps := spec.SecurityContext
	if ps == nil || ps.RunAsNonRoot == nil || !*ps.RunAsNonRoot {
		t.Errorf("%s: pod securityContext.runAsNonRoot must be true", d.Name)
	} else if ps.RunAsUser == nil || *ps.RunAsUser != nonRootUID {
		t.Errorf("%s: runAsUser = %v, want the image's user %d", d.Name, ps.RunAsUser, nonRootUID)
	}
	if ps == nil || ps.SeccompProfile == nil || ps.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: seccompProfile must be RuntimeDefault", d.Name)
	}
	cs := c.SecurityContext
	switch {
	case cs == nil:
		t.Errorf("%s: no container securityContext", d.Name)
	case cs.AllowPrivilegeEscalation == nil || *cs.AllowPrivilegeEscalation:
		t.Errorf("%s: allowPrivilegeEscalation must be false", d.Name)
	case cs.ReadOnlyRootFilesystem == nil || !*cs.ReadOnlyRootFilesystem:
		t.Errorf("%s: readOnlyRootFilesystem must be true", d.Name)
	case cs.Capabilities == nil || !slices.Equal(cs.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(cs.Capabilities.Add) > 0:
		t.Errorf("%s: capabilities must drop ALL and add none", d.Name)
	case cs.Privileged != nil && *cs.Privileged:
		t.Errorf("%s: privileged", d.Name)
	}
}

// checkStopTiming checks that a pod is given time to drain: a preStop sleep
// while endpoints update, then --grace, within terminationGracePeriodSeconds.
func checkStopTiming(t *testing.T, d *appsv1.Deployment, c *corev1.Container) {
	t.Helper()
	spec := d.Spec.Template.Spec
	if c.Lifecycle == nil || c.Lifecycle.PreStop == nil || c.Lifecycle.PreStop.Sleep == nil {
		// exec would need a shell or a sleep binary, and the image is scratch.
		t.Fatalf("%s: want a preStop sleep action", d.Name)
	}
	if c.Lifecycle.PreStop.Exec != nil || c.Lifecycle.PreStop.HTTPGet != nil {
		t.Errorf("%s: preStop must only sleep", d.Name)
	}
	preStop := time.Duration(c.Lifecycle.PreStop.Sleep.Seconds) * time.Second
	if preStop <= 0 {
		t.Errorf("%s: preStop sleeps %v", d.Name, preStop)
	}
	grace := graceFromArgs(t, c.Args)
	if spec.TerminationGracePeriodSeconds == nil {
		t.Fatalf("%s: no terminationGracePeriodSeconds", d.Name)
	}
	// The kubelet's countdown includes the preStop hook: SIGTERM arrives
	// after preStop, and the app then needs up to --grace.
	termination := time.Duration(*spec.TerminationGracePeriodSeconds) * time.Second
	if termination <= preStop+grace {
		t.Errorf("%s: terminationGracePeriodSeconds %v <= preStop %v + --grace %v: calls in flight would be killed", d.Name, termination, preStop, grace)
	}
	if termination > preStop+grace+30*time.Second {
		t.Errorf("%s: terminationGracePeriodSeconds %v is far beyond preStop %v + --grace %v: a stuck pod lingers", d.Name, termination, preStop, grace)
	}
}

func checkPod(t *testing.T, d *appsv1.Deployment, c *corev1.Container) {
	t.Helper()
	spec := d.Spec.Template.Spec

	if s := d.Spec.Strategy.RollingUpdate; s == nil || s.MaxUnavailable == nil || s.MaxUnavailable.IntValue() != 0 {
		t.Errorf("%s: rollingUpdate.maxUnavailable must be 0 so that a rollout never lowers capacity", d.Name)
	}
	if spec.EnableServiceLinks == nil || *spec.EnableServiceLinks {
		t.Errorf("%s: enableServiceLinks must be false: a Service named backend would set BACKEND_PORT=tcp://...", d.Name)
	}
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("%s: automountServiceAccountToken must be false", d.Name)
	}

	checkSecurity(t, d, c)

	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, hasReq := c.Resources.Requests[r]
		limit, hasLimit := c.Resources.Limits[r]
		if !hasReq || !hasLimit {
			t.Errorf("%s: %s needs a request and a limit", d.Name, r)
			continue
		}
		if req.Cmp(limit) > 0 {
			t.Errorf("%s: %s request %s exceeds limit %s", d.Name, r, req.String(), limit.String())
		}
	}

	checkStopTiming(t, d, c)
}

// graceFromArgs returns the --grace the container runs with, the binary's
// default when the args do not set it.
func graceFromArgs(t *testing.T, args []string) time.Duration {
	t.Helper()
	return durationArg(t, args, "grace", defaultGrace)
}

// durationArg returns the duration flag name in args, or def when the args
// do not set it.
func durationArg(t *testing.T, args []string, name string, def time.Duration) time.Duration {
	t.Helper()
	for i, a := range args {
		var v string
		switch {
		case strings.HasPrefix(a, "--"+name+"="), strings.HasPrefix(a, "-"+name+"="):
			v = a[strings.IndexByte(a, '=')+1:]
		case (a == "--"+name || a == "-"+name) && i+1 < len(args):
			v = args[i+1]
		default:
			continue
		}
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("--%s %q: %v", name, v, err)
		}
		return d
	}
	return def
}

// TestKustomizeBuild renders the base with kubectl's kustomize, when kubectl
// is installed, and decodes the result as strictly as the files themselves.
func TestKustomizeBuild(t *testing.T) {
	kubectl, err := exec.LookPath("kubectl")
	if err != nil {
		t.Skip("kubectl not installed")
	}
	out, err := exec.Command(kubectl, "kustomize", k8sDir).Output()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v", k8sDir, stderrOf(err))
	}
	m := manifests{
		deployments: map[string]*appsv1.Deployment{},
		services:    map[string]*corev1.Service{},
		pdbs:        map[string]*policyv1.PodDisruptionBudget{},
	}
	for i, doc := range bytes.Split(out, []byte("\n---\n")) {
		m.add(t, fmt.Sprintf("kubectl kustomize, document %d", i+1), doc)
	}
	if len(m.deployments) != 2 || len(m.services) != 2 || len(m.pdbs) != 2 {
		t.Fatalf("rendered %d Deployments, %d Services, %d PodDisruptionBudgets; want 2 of each", len(m.deployments), len(m.services), len(m.pdbs))
	}
	for name, d := range m.deployments {
		if img := d.Spec.Template.Spec.Containers[0].Image; img != "grpcplay:latest" {
			t.Errorf("%s: rendered image %q, want grpcplay:latest from the images entry", name, img)
		}
		if d.Labels["app.kubernetes.io/part-of"] != "grpcplay" {
			t.Errorf("%s: rendered without the base's part-of label", name)
		}
	}
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok && len(ee.Stderr) > 0 {
		return err.Error() + ": " + strings.TrimSpace(string(ee.Stderr))
	}
	return err.Error()
}
