// Package deploy_test validates the deployment files in deploy/: the
// Kubernetes manifests decode strictly into the Kubernetes API types (a
// misspelt field fails) and hang together; the environment variables they,
// and the systemd units set name real flags; the Grafana
// dashboard and the alert rules query metrics a real core exports; the
// install script places what it should.
package deploy_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	kjson "sigs.k8s.io/json"
	"sigs.k8s.io/yaml"

	"github.com/edgefaas/edgefaas/internal/testing/testcluster"
	"github.com/edgefaas/edgefaas/internal/testing/testmodules"
)

func deployDir(t *testing.T) string {
	return filepath.Join(testmodules.Root(t), "deploy")
}

// manifests holds every object of deploy/kubernetes, typed.
type manifests struct {
	namespaces  []*corev1.Namespace
	secrets     map[string]*corev1.Secret
	pvcs        map[string]*corev1.PersistentVolumeClaim
	services    []*corev1.Service
	deployments []*appsv1.Deployment
	daemonSets  []*appsv1.DaemonSet
}

// workload is a pod template with its owner's name.
type workload struct {
	kind, name, namespace string
	selector              map[string]string
	pod                   *corev1.PodTemplateSpec
}

func (m *manifests) workloads() []workload {
	var ws []workload
	for _, d := range m.deployments {
		ws = append(ws, workload{"Deployment", d.Name, d.Namespace, d.Spec.Selector.MatchLabels, &d.Spec.Template})
	}
	for _, d := range m.daemonSets {
		ws = append(ws, workload{"DaemonSet", d.Name, d.Namespace, d.Spec.Selector.MatchLabels, &d.Spec.Template})
	}
	return ws
}

var docSep = regexp.MustCompile(`(?m)^---\s*$`)

// decodeStrict decodes one YAML document into the API type of its kind,
// refusing unknown and duplicate fields.
func decodeStrict(doc []byte, m *manifests) (string, error) {
	var meta struct {
		APIVersion string `json:"apiVersion"`
		Kind       string `json:"kind"`
	}
	if err := yaml.Unmarshal(doc, &meta); err != nil {
		return "", err
	}
	// Like the API server: YAML to JSON refusing duplicate keys, then
	// case-sensitive JSON decoding refusing unknown and duplicate fields
	// (encoding/json alone would accept "clusterIp" for clusterIP).
	js, err := yaml.YAMLToJSONStrict(doc)
	if err != nil {
		return "", err
	}
	strict := func(into any) error {
		serrs, err := kjson.UnmarshalStrict(js, into, kjson.DisallowDuplicateFields, kjson.DisallowUnknownFields)
		if err != nil {
			return err
		}
		return errors.Join(serrs...)
	}
	id := meta.APIVersion + "/" + meta.Kind
	switch id {
	case "v1/Namespace":
		o := &corev1.Namespace{}
		if err := strict(o); err != nil {
			return id, err
		}
		m.namespaces = append(m.namespaces, o)
	case "v1/Secret":
		o := &corev1.Secret{}
		if err := strict(o); err != nil {
			return id, err
		}
		m.secrets[o.Name] = o
	case "v1/PersistentVolumeClaim":
		o := &corev1.PersistentVolumeClaim{}
		if err := strict(o); err != nil {
			return id, err
		}
		m.pvcs[o.Name] = o
	case "v1/Service":
		o := &corev1.Service{}
		if err := strict(o); err != nil {
			return id, err
		}
		m.services = append(m.services, o)
	case "apps/v1/Deployment":
		o := &appsv1.Deployment{}
		if err := strict(o); err != nil {
			return id, err
		}
		m.deployments = append(m.deployments, o)
	case "apps/v1/DaemonSet":
		o := &appsv1.DaemonSet{}
		if err := strict(o); err != nil {
			return id, err
		}
		m.daemonSets = append(m.daemonSets, o)
	default:
		return id, fmt.Errorf("unexpected kind %q (apiVersion %q): add it to the test", meta.Kind, meta.APIVersion)
	}
	return id, nil
}

func loadManifests(t *testing.T) *manifests {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(deployDir(t), "kubernetes", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in deploy/kubernetes: %v", err)
	}
	m := &manifests{secrets: map[string]*corev1.Secret{}, pvcs: map[string]*corev1.PersistentVolumeClaim{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range docSep.Split(string(b), -1) {
			if strings.TrimSpace(stripComments(doc)) == "" {
				continue
			}
			if id, err := decodeStrict([]byte(doc), m); err != nil {
				t.Errorf("%s document %d (%s): %v", filepath.Base(f), i+1, id, err)
			}
		}
	}
	if t.Failed() {
		t.FailNow()
	}
	return m
}

func stripComments(doc string) string {
	var b strings.Builder
	for _, l := range strings.Split(doc, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(l), "#") {
			b.WriteString(l + "\n")
		}
	}
	return b.String()
}

// TestStrictDecodingCatchesTypos proves the check is real: a misspelt
// field and an unknown kind are refused.
func TestStrictDecodingCatchesTypos(t *testing.T) {
	m := &manifests{secrets: map[string]*corev1.Secret{}, pvcs: map[string]*corev1.PersistentVolumeClaim{}}
	for _, doc := range []string{
		"apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec: {clusterIp: None}\n",
		"apiVersion: apps/v1\nkind: DaemonSet\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers: [{name: a, image: b, imagePullPolicy: Always, env: [{name: A, valu: b}]}]\n",
		"apiVersion: v1\nkind: Secret\nmetadata: {name: x}\nstringData: {a: b}\nstringData: {c: d}\n",
		"apiVersion: v1\nkind: Servise\nmetadata: {name: x}\n",
	} {
		if _, err := decodeStrict([]byte(doc), m); err == nil {
			t.Errorf("accepted:\n%s", doc)
		}
	}
}

func TestKubernetesManifests(t *testing.T) {
	m := loadManifests(t)
	if len(m.namespaces) != 1 || len(m.deployments) != 1 || len(m.daemonSets) != 1 {
		t.Fatalf("want one Namespace, one core Deployment, one worker DaemonSet; have %d, %d, %d", len(m.namespaces), len(m.deployments), len(m.daemonSets))
	}
	ns := m.namespaces[0].Name
	core, worker := m.deployments[0], m.daemonSets[0]

	// Every namespaced object lives in the namespace.
	check := func(kind, name, namespace string) {
		if namespace != ns {
			t.Errorf("%s %s: namespace %q, want %q", kind, name, namespace, ns)
		}
	}
	for _, s := range m.secrets {
		check("Secret", s.Name, s.Namespace)
	}
	for _, p := range m.pvcs {
		check("PersistentVolumeClaim", p.Name, p.Namespace)
	}
	for _, s := range m.services {
		check("Service", s.Name, s.Namespace)
	}

	// Secrets and their keys.
	for _, key := range []struct{ secret, key string }{{"edgefaas-cookie", "cookie"}, {"edgefaas-tls", "tls.crt"}, {"edgefaas-tls", "tls.key"}, {"edgefaas-tls", "ca.crt"}, {"edgefaas-tokens", "metrics-token"}} {
		if !secretHas(m, key.secret, key.key) {
			t.Errorf("Secret %s has no key %s", key.secret, key.key)
		}
	}

	for _, w := range m.workloads() {
		check(w.kind, w.name, w.namespace)
		checkPod(t, m, w)
	}

	// The core: one replica, recreated (never two on the volume), its data
	// on the PVC, Prometheus annotations naming its HTTP port.
	if core.Spec.Replicas == nil || *core.Spec.Replicas != 1 || core.Spec.Strategy.Type != appsv1.RecreateDeploymentStrategyType {
		t.Errorf("core Deployment: want 1 replica with the Recreate strategy")
	}
	c := core.Spec.Template.Spec.Containers[0]
	dataDir := envValue(c, "EDGEFAAS_DATA_DIR")
	mountedPVC := false
	for _, vm := range c.VolumeMounts {
		v := volume(&core.Spec.Template, vm.Name)
		if v != nil && v.PersistentVolumeClaim != nil && vm.MountPath == dataDir {
			if _, ok := m.pvcs[v.PersistentVolumeClaim.ClaimName]; !ok {
				t.Errorf("core mounts PVC %s, which is not defined", v.PersistentVolumeClaim.ClaimName)
			}
			mountedPVC = true
		}
	}
	if !mountedPVC {
		t.Errorf("core: EDGEFAAS_DATA_DIR %q is not a mounted PersistentVolumeClaim", dataDir)
	}
	ann := core.Spec.Template.Annotations
	if ann["prometheus.io/scrape"] != "true" || ann["prometheus.io/path"] != "/metrics" || ann["prometheus.io/port"] != fmt.Sprint(containerPort(c, "http")) {
		t.Errorf("core pod: Prometheus annotations %v do not name the http port %d and /metrics", ann, containerPort(c, "http"))
	}
	if httpAddr := envValue(c, "EDGEFAAS_HTTP_ADDR"); !strings.HasSuffix(httpAddr, fmt.Sprintf(":%d", containerPort(c, "http"))) {
		t.Errorf("core: EDGEFAAS_HTTP_ADDR %q is not the http container port", httpAddr)
	}
	if nodeAddr := envValue(c, "EDGEFAAS_NODE_ADDR"); !strings.HasSuffix(nodeAddr, fmt.Sprintf(":%d", containerPort(c, "node"))) {
		t.Errorf("core: EDGEFAAS_NODE_ADDR %q is not the node container port", nodeAddr)
	}

	// Services select the core's pods and name its ports; one is headless,
	// published before ready, and is what the workers resolve.
	var headless *corev1.Service
	for _, s := range m.services {
		if !subset(s.Spec.Selector, core.Spec.Template.Labels) {
			t.Errorf("Service %s selects %v, not the core's pods %v", s.Name, s.Spec.Selector, core.Spec.Template.Labels)
		}
		for _, p := range s.Spec.Ports {
			if p.TargetPort.StrVal != "" && containerPort(c, p.TargetPort.StrVal) == 0 {
				t.Errorf("Service %s targets port %q, which the core does not name", s.Name, p.TargetPort.StrVal)
			}
		}
		if s.Spec.ClusterIP == corev1.ClusterIPNone {
			headless = s
		}
	}
	if headless == nil {
		t.Fatal("no headless Service (clusterIP: None) for worker discovery")
	}
	if !headless.Spec.PublishNotReadyAddresses {
		t.Errorf("headless Service %s: publishNotReadyAddresses must be true, or workers cannot find a core that is not ready yet", headless.Name)
	}
	wc := worker.Spec.Template.Spec.Containers[0]
	want := fmt.Sprintf("%s.%s.svc.cluster.local:%d", headless.Name, ns, headless.Spec.Ports[0].Port)
	if got := envValue(wc, "EDGEFAAS_JOIN_DNS"); got != want {
		t.Errorf("worker EDGEFAAS_JOIN_DNS = %q, want %q (the headless Service)", got, want)
	}
	// Each worker needs a unique node name: its pod IP.
	if !strings.Contains(envValue(wc, "EDGEFAAS_NODE_ADDR"), "$(POD_IP)") {
		t.Errorf("worker EDGEFAAS_NODE_ADDR must use the pod IP (unique worker names)")
	}
	if e := env(wc, "EDGEFAAS_MEMORY"); e == nil || e.ValueFrom == nil || e.ValueFrom.ResourceFieldRef == nil || e.ValueFrom.ResourceFieldRef.Resource != "limits.memory" {
		t.Errorf("worker EDGEFAAS_MEMORY should come from the container's memory limit")
	} else if d := e.ValueFrom.ResourceFieldRef.Divisor; d.String() != "1Mi" {
		// A bare number is MiB to --memory: bytes would read 2^20 times too large.
		t.Errorf("worker EDGEFAAS_MEMORY has divisor %q, want 1Mi (a bare --memory is MiB)", d.String())
	}
}

func secretHas(m *manifests, name, key string) bool {
	s, ok := m.secrets[name]
	if !ok {
		return false
	}
	_, a := s.Data[key]
	_, b := s.StringData[key]
	return a || b
}

// checkPod checks what every pod must satisfy: labels matching the
// selector, hardened containers with a memory limit, env variables that are
// real flags and defined before use, Secret references that resolve.
func checkPod(t *testing.T, m *manifests, w workload) {
	t.Helper()
	where := w.kind + " " + w.name
	if len(w.selector) == 0 || !subset(w.selector, w.pod.Labels) {
		t.Errorf("%s: selector %v does not match the pod labels %v", where, w.selector, w.pod.Labels)
	}
	ps := w.pod.Spec
	if ps.SecurityContext == nil || ps.SecurityContext.RunAsNonRoot == nil || !*ps.SecurityContext.RunAsNonRoot ||
		ps.SecurityContext.SeccompProfile == nil || ps.SecurityContext.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: the pod must run as non-root with the RuntimeDefault seccomp profile", where)
	}
	if ps.AutomountServiceAccountToken == nil || *ps.AutomountServiceAccountToken {
		t.Errorf("%s: edgefaas does not use the Kubernetes API: set automountServiceAccountToken: false", where)
	}
	for _, v := range ps.Volumes {
		if v.Secret != nil {
			s, ok := m.secrets[v.Secret.SecretName]
			if !ok {
				t.Errorf("%s: volume %s uses Secret %s, which is not defined", where, v.Name, v.Secret.SecretName)
			}
			for _, it := range v.Secret.Items {
				if ok && !secretHas(m, s.Name, it.Key) {
					t.Errorf("%s: volume %s uses key %s of Secret %s, which it lacks", where, v.Name, it.Key, s.Name)
				}
			}
		}
	}
	role := w.pod.Labels["app.kubernetes.io/component"]
	flags := commandFlags(t, role)
	for _, c := range ps.Containers {
		where := where + " container " + c.Name
		if len(c.Args) == 0 || c.Args[0] != role {
			t.Errorf("%s: args %v, want the %s command", where, c.Args, role)
		}
		sc := c.SecurityContext
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation ||
			sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
			sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s: want allowPrivilegeEscalation false, readOnlyRootFilesystem true, capabilities drop ALL", where)
		}
		if _, ok := c.Resources.Limits[corev1.ResourceMemory]; !ok {
			t.Errorf("%s: no memory limit", where)
		}
		for _, vm := range c.VolumeMounts {
			if volume(w.pod, vm.Name) == nil {
				t.Errorf("%s: mounts undefined volume %s", where, vm.Name)
			}
		}
		defined := map[string]bool{}
		for _, e := range c.Env {
			for _, ref := range regexp.MustCompile(`\$\(([A-Z_]+)\)`).FindAllStringSubmatch(e.Value, -1) {
				if !defined[ref[1]] {
					t.Errorf("%s: %s uses $(%s) before it is defined", where, e.Name, ref[1])
				}
			}
			defined[e.Name] = true
			if strings.HasPrefix(e.Name, "EDGEFAAS_") && !flags[e.Name] {
				t.Errorf("%s: %s is no flag of `edgefaas %s` (it would be silently ignored)", where, e.Name, role)
			}
			if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
				r := e.ValueFrom.SecretKeyRef
				if !secretHas(m, r.Name, r.Key) {
					t.Errorf("%s: %s references key %s of Secret %s, which does not exist", where, e.Name, r.Key, r.Name)
				}
			}
			if e.ValueFrom != nil && e.ValueFrom.ResourceFieldRef != nil && e.ValueFrom.ResourceFieldRef.ContainerName != c.Name {
				t.Errorf("%s: %s reads the resources of container %q", where, e.Name, e.ValueFrom.ResourceFieldRef.ContainerName)
			}
		}
	}
}

func volume(p *corev1.PodTemplateSpec, name string) *corev1.Volume {
	for i := range p.Spec.Volumes {
		if p.Spec.Volumes[i].Name == name {
			return &p.Spec.Volumes[i]
		}
	}
	return nil
}

func env(c corev1.Container, name string) *corev1.EnvVar {
	for i := range c.Env {
		if c.Env[i].Name == name {
			return &c.Env[i]
		}
	}
	return nil
}

func envValue(c corev1.Container, name string) string {
	if e := env(c, name); e != nil {
		return e.Value
	}
	return ""
}

func containerPort(c corev1.Container, name string) int32 {
	for _, p := range c.Ports {
		if p.Name == name {
			return p.ContainerPort
		}
	}
	return 0
}

func subset(sub, of map[string]string) bool {
	for k, v := range sub {
		if of[k] != v {
			return false
		}
	}
	return len(sub) > 0
}

var (
	flagsMu    sync.Mutex
	flagsCache = map[string]map[string]bool{}
	flagRE     = regexp.MustCompile(`(?m)^\s+(?:-\w, )?--([a-z][a-z0-9-]*)`)
)

// commandFlags returns the EDGEFAAS_* variables `edgefaas ROLE` reads: one
// per flag of its --help.
func commandFlags(t *testing.T, role string) map[string]bool {
	t.Helper()
	flagsMu.Lock()
	defer flagsMu.Unlock()
	if f, ok := flagsCache[role]; ok {
		return f
	}
	out, err := exec.Command(testcluster.Binary(t), role, "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("edgefaas %s --help: %v\n%s", role, err, out)
	}
	f := map[string]bool{}
	for _, m := range flagRE.FindAllSubmatch(out, -1) {
		f["EDGEFAAS_"+strings.ToUpper(strings.ReplaceAll(string(m[1]), "-", "_"))] = true
	}
	if !f["EDGEFAAS_DATA_DIR"] || !f["EDGEFAAS_COOKIE"] {
		t.Fatalf("could not read the flags of edgefaas %s --help:\n%s", role, out)
	}
	flagsCache[role] = f
	return f
}

// envFileVars reads KEY=VALUE lines (commented-out ones too: they are
// documented settings and must be real).
func envFileVars(t *testing.T, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	vars := map[string]string{}
	for _, l := range strings.Split(string(b), "\n") {
		l = strings.TrimPrefix(strings.TrimSpace(l), "#")
		if k, v, ok := strings.Cut(l, "="); ok && regexp.MustCompile(`^EDGEFAAS_[A-Z_]+$`).MatchString(k) {
			vars[k] = v
		}
	}
	return vars
}
