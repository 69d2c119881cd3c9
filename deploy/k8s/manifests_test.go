// Package k8s_test checks the Kubernetes manifests in worker/ and the NATS
// chart values: every manifest decodes strictly into the Kubernetes API
// types (an unknown or misspelt field, a duplicate key or a value of the
// wrong type fails), and the settings that keep the worker safe hold
// together (probes on the right port, a grace period longer than the drain,
// selectors that match, environment variables the worker reads).
package k8s_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"github.com/clerkjobs/clerkjobs/internal/testenv"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"sigs.k8s.io/yaml"
)

// kinds are the objects the manifests may hold, by apiVersion and kind.
var kinds = map[string]func() any{
	"apps/v1/Deployment":                 func() any { return &appsv1.Deployment{} },
	"policy/v1/PodDisruptionBudget":      func() any { return &policyv1.PodDisruptionBudget{} },
	"v1/Service":                         func() any { return &corev1.Service{} },
	"v1/ServiceAccount":                  func() any { return &corev1.ServiceAccount{} },
	"networking.k8s.io/v1/NetworkPolicy": func() any { return &networkingv1.NetworkPolicy{} },
}

// decodeStrict decodes one YAML document into the API type its apiVersion
// and kind name, refusing unknown fields and duplicate keys.
func decodeStrict(doc []byte) (any, error) {
	var tm metav1.TypeMeta
	if err := yaml.Unmarshal(doc, &tm); err != nil {
		return nil, err
	}
	mk, ok := kinds[tm.APIVersion+"/"+tm.Kind]
	if !ok {
		return nil, fmt.Errorf("apiVersion %q kind %q: not a kind this test knows (add it to kinds)", tm.APIVersion, tm.Kind)
	}
	obj := mk()
	if err := yaml.UnmarshalStrict(doc, obj); err != nil {
		return nil, fmt.Errorf("%s: %w", tm.Kind, err)
	}
	return obj, nil
}

// splitDocs splits a multi-document YAML file, dropping empty documents.
func splitDocs(b []byte) [][]byte {
	var out [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^\s*#.*$`).ReplaceAllString(d, "")) != "" {
			out = append(out, []byte(d))
		}
	}
	return out
}

type manifests struct {
	deployment *appsv1.Deployment
	pdb        *policyv1.PodDisruptionBudget
	services   []*corev1.Service
	accounts   []*corev1.ServiceAccount
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	files, err := filepath.Glob("worker/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests in worker/: %v", err)
	}
	var m manifests
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, doc := range splitDocs(b) {
			obj, err := decodeStrict(doc)
			if err != nil {
				t.Errorf("%s, document %d: %v", f, i+1, err)
				continue
			}
			switch o := obj.(type) {
			case *appsv1.Deployment:
				if m.deployment != nil {
					t.Errorf("%s: a second Deployment", f)
				}
				m.deployment = o
			case *policyv1.PodDisruptionBudget:
				m.pdb = o
			case *corev1.Service:
				m.services = append(m.services, o)
			case *corev1.ServiceAccount:
				m.accounts = append(m.accounts, o)
			}
		}
	}
	if m.deployment == nil || m.pdb == nil {
		t.Fatalf("worker/ needs a Deployment and a PodDisruptionBudget")
	}
	return m
}

// The strict decoder is what makes a typo fail: prove it does.
func TestDecodeStrictRefusesTypos(t *testing.T) {
	good := "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata: {name: x}\nspec:\n  maxUnavailable: 1\n"
	if _, err := decodeStrict([]byte(good)); err != nil {
		t.Fatalf("good manifest: %v", err)
	}
	for name, bad := range map[string]string{
		"unknown field":  strings.Replace(good, "maxUnavailable", "maxUnavailabel", 1),
		"duplicate key":  good + "  maxUnavailable: 2\n",
		"wrong type":     strings.Replace(good, "metadata: {name: x}", "metadata: {name: [x]}", 1),
		"unknown kind":   strings.Replace(good, "PodDisruptionBudget", "PodDisruptionBudgett", 1),
		"nested typo":    "apiVersion: v1\nkind: Service\nmetadata: {name: x}\nspec:\n  ports: [{port: 1, targetPortt: 2}]\n",
		"bad quantity":   "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  template:\n    spec:\n      containers: [{name: c, resources: {limits: {memory: 12 MB}}}]\n",
		"bad int-or-str": "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\nspec:\n  strategy: {rollingUpdate: {maxSurge: [1]}}\n",
		"old apiVersion": strings.Replace(good, "policy/v1", "policy/v1beta1", 1),
		"misspelt kind":  strings.Replace(good, "kind: PodDisruptionBudget", "knd: PodDisruptionBudget", 1),
		"string for int": strings.Replace(good, "maxUnavailable: 1", "maxUnavailable: {a: 1}", 1),
	} {
		if _, err := decodeStrict([]byte(bad)); err == nil {
			t.Errorf("%s: decoded without error", name)
		}
	}
}

func TestWorkerManifests(t *testing.T) {
	m := loadManifests(t)
	d := m.deployment
	pod := d.Spec.Template.Spec
	if len(pod.Containers) != 1 {
		t.Fatalf("worker pod has %d containers", len(pod.Containers))
	}
	c := pod.Containers[0]
	env := map[string]corev1.EnvVar{}
	for _, e := range c.Env {
		if _, dup := env[e.Name]; dup {
			t.Errorf("env %s set twice", e.Name)
		}
		env[e.Name] = e
	}

	t.Run("replicas and selectors", func(t *testing.T) {
		if d.Spec.Replicas == nil || *d.Spec.Replicas < 2 {
			t.Errorf("replicas = %v, want at least 2", d.Spec.Replicas)
		}
		sel, err := metav1.LabelSelectorAsSelector(d.Spec.Selector)
		if err != nil || sel.Empty() {
			t.Fatalf("deployment selector: %v", err)
		}
		podLabels := labels.Set(d.Spec.Template.Labels)
		if !sel.Matches(podLabels) {
			t.Errorf("deployment selector %s does not match its pod labels %v", sel, podLabels)
		}
		pdbSel, err := metav1.LabelSelectorAsSelector(m.pdb.Spec.Selector)
		if err != nil || !pdbSel.Matches(podLabels) {
			t.Errorf("PodDisruptionBudget selector %v does not match the worker pods", m.pdb.Spec.Selector)
		}
		if m.pdb.Spec.MinAvailable == nil && m.pdb.Spec.MaxUnavailable == nil {
			t.Error("PodDisruptionBudget sets neither minAvailable nor maxUnavailable")
		}
		for _, s := range m.services {
			if !labels.SelectorFromSet(s.Spec.Selector).Matches(podLabels) || len(s.Spec.Selector) == 0 {
				t.Errorf("Service %s selector %v does not match the worker pods", s.Name, s.Spec.Selector)
			}
			for _, p := range s.Spec.Ports {
				if p.TargetPort.StrVal != "" && !hasPort(c, p.TargetPort.StrVal) {
					t.Errorf("Service %s targets port %q, which the container does not name", s.Name, p.TargetPort.StrVal)
				}
			}
		}
		if !slices.ContainsFunc(m.accounts, func(a *corev1.ServiceAccount) bool { return a.Name == pod.ServiceAccountName }) {
			t.Errorf("service account %q is not among the manifests", pod.ServiceAccountName)
		}
	})

	t.Run("probes", func(t *testing.T) {
		for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
			want := map[string]string{"liveness": "/healthz", "readiness": "/readyz"}[name]
			if p == nil || p.HTTPGet == nil {
				t.Errorf("%s probe: want an HTTP GET of %s", name, want)
				continue
			}
			if p.HTTPGet.Path != want {
				t.Errorf("%s probe path %q, want %q", name, p.HTTPGet.Path, want)
			}
			if port := p.HTTPGet.Port; port.StrVal != "" && !hasPort(c, port.StrVal) || port.StrVal == "" && port.IntVal != 9090 {
				t.Errorf("%s probe port %s is not the metrics port", name, port.String())
			}
		}
		if ma := d.Spec.Strategy.RollingUpdate; ma == nil || ma.MaxUnavailable == nil || ma.MaxUnavailable.IntValue() != 0 {
			t.Error("rolling update should keep every worker until its replacement is ready (maxUnavailable: 0)")
		}
	})

	t.Run("grace period outlasts the drain", func(t *testing.T) {
		drain := 20 * time.Second // the worker's default
		if e, ok := env["WORKER_DRAIN_TIMEOUT"]; ok {
			var err error
			if drain, err = time.ParseDuration(e.Value); err != nil {
				t.Fatalf("WORKER_DRAIN_TIMEOUT %q: %v", e.Value, err)
			}
		}
		grace := 30 * time.Second // Kubernetes' default
		if pod.TerminationGracePeriodSeconds != nil {
			grace = time.Duration(*pod.TerminationGracePeriodSeconds) * time.Second
		}
		// After the drain the worker drains NATS for up to 5 s.
		if grace < drain+10*time.Second {
			t.Errorf("terminationGracePeriodSeconds %s: want at least the drain timeout %s plus 10s", grace, drain)
		}
	})

	t.Run("secrets come from Secrets", func(t *testing.T) {
		key, file := env["CLERK_SECRET_KEY"], env["CLERK_SECRET_KEY_FILE"]
		switch {
		case key.ValueFrom != nil && key.ValueFrom.SecretKeyRef != nil:
		case file.Value != "":
			if !mountedFromSecret(pod, c, file.Value) {
				t.Errorf("CLERK_SECRET_KEY_FILE %s is not on a volume from a Secret", file.Value)
			}
		default:
			t.Error("the Clerk secret key comes from neither a Secret reference nor a file on a Secret volume")
		}
		for _, name := range []string{"NATS_PASSWORD", "CLERK_SECRET_KEY", "NATS_CREDS", "NATS_NKEY", "NATS_KEY"} {
			if e, ok := env[name]; ok && e.Value != "" && !strings.HasPrefix(e.Value, "/") {
				t.Errorf("%s is a literal value; take it from a Secret", name)
			}
		}
		for _, name := range []string{"NATS_CREDS", "NATS_NKEY", "NATS_CA", "NATS_CERT", "NATS_KEY"} {
			if e, ok := env[name]; ok && !mountedFromSecret(pod, c, e.Value) {
				t.Errorf("%s %s is not on a mounted volume", name, e.Value)
			}
		}
	})

	t.Run("the NATS password is a file", func(t *testing.T) {
		// In the environment it shows in `kubectl describe`, in
		// /proc/<pid>/environ of every child process, in crash reports.
		if e, ok := env["NATS_PASSWORD"]; ok {
			t.Errorf("NATS_PASSWORD is set (%+v): mount the password from the Secret as a file and set NATS_PASSWORD_FILE", e.ValueFrom)
		}
		path := env["NATS_PASSWORD_FILE"].Value
		if secret, key, ok := secretFile(pod, c, path); !ok || secret != "clerkjobs-worker" || key != "nats-password" {
			t.Errorf("NATS_PASSWORD_FILE %q is key %q of Secret %q (found: %v); want key nats-password of the Secret clerkjobs-worker, projected on a mounted volume", path, key, secret, ok)
		}
		if file := env["CLERK_SECRET_KEY_FILE"].Value; file != "" {
			if _, _, ok := secretFile(pod, c, file); !ok {
				t.Errorf("CLERK_SECRET_KEY_FILE %s is not a key projected from a Secret", file)
			}
		}
	})

	t.Run("hardened", func(t *testing.T) {
		psc, sc := pod.SecurityContext, c.SecurityContext
		if psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot || psc.RunAsUser == nil || *psc.RunAsUser == 0 {
			t.Error("pod must run as a non-root user")
		}
		if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Error("container needs readOnlyRootFilesystem: true")
		}
		if sc == nil || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Error("container needs allowPrivilegeEscalation: false")
		}
		if sc == nil || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Error("container should drop ALL capabilities")
		}
		if pod.AutomountServiceAccountToken == nil || *pod.AutomountServiceAccountToken {
			t.Error("the worker needs no Kubernetes API token: automountServiceAccountToken: false")
		}
		if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
			t.Error("set CPU and memory requests and a memory limit")
		}
	})

	t.Run("the Go runtime collects before the kernel kills", func(t *testing.T) {
		// GOMEMLIMIT at the container's limit leaves nothing for what the
		// runtime does not count (and the heap may grow to twice its live
		// size at GOGC=200 first): the kernel kills before Go collects.
		e, ok := env["GOMEMLIMIT"]
		if !ok || e.ValueFrom != nil || e.Value == "" {
			t.Fatalf("GOMEMLIMIT %+v: want a fixed value below the memory limit", e)
		}
		v, err := resource.ParseQuantity(strings.TrimSuffix(e.Value, "B"))
		if err != nil {
			t.Fatalf("GOMEMLIMIT %q: %v", e.Value, err)
		}
		limit := c.Resources.Limits.Memory().Value()
		if v.Value() > limit*9/10 {
			t.Errorf("GOMEMLIMIT %s is %d%% of the memory limit %s: want at most 90%%", e.Value, v.Value()*100/limit, c.Resources.Limits.Memory())
		}
	})

	t.Run("environment variables the worker reads", func(t *testing.T) {
		known := testenv.WorkerEnv(t)
		for name := range env {
			if !known[name] {
				t.Errorf("env %s: the worker reads no such variable (a typo?)", name)
			}
		}
		if v := env["WORKER_REPLY_PREFIX"].Value; v != "_INBOX." {
			t.Errorf("WORKER_REPLY_PREFIX = %q, want _INBOX. (answers only to inboxes)", v)
		}
		if env["WORKER_REPLICAS"].Value != "3" {
			t.Errorf("WORKER_REPLICAS = %q, want 3 for the three-node cluster", env["WORKER_REPLICAS"].Value)
		}
	})

	t.Run("NATS over TLS", func(t *testing.T) {
		// Token replies leave the worker on this connection.
		if u := env["NATS_URL"].Value; !strings.HasPrefix(u, "tls://") {
			t.Errorf("NATS_URL = %q, want tls://", u)
		}
		if ca := env["NATS_CA"].Value; ca == "" || !mountedFromSecret(pod, c, ca) {
			t.Errorf("NATS_CA = %q, want the CA's file on a volume from the Secret nats-ca", ca)
		}
	})
}

func hasPort(c corev1.Container, name string) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == name })
}

// mountedFromSecret reports whether path lies on a volume of c that comes
// from a Secret.
func mountedFromSecret(pod corev1.PodSpec, c corev1.Container, path string) bool {
	for _, vm := range c.VolumeMounts {
		if !strings.HasPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/") {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name == vm.Name && v.Secret != nil {
				return true
			}
		}
	}
	return false
}

// secretFile says which Secret and key the file at path is on c: a volume
// from a Secret mounted at path's directory, which projects the key to
// that file (every key, when it lists no items). A path on the volume
// that no item projects would not exist in the pod.
func secretFile(pod corev1.PodSpec, c corev1.Container, path string) (secret, key string, ok bool) {
	for _, vm := range c.VolumeMounts {
		rel, under := strings.CutPrefix(path, strings.TrimSuffix(vm.MountPath, "/")+"/")
		if !under || vm.SubPath != "" {
			continue
		}
		for _, v := range pod.Volumes {
			if v.Name != vm.Name || v.Secret == nil {
				continue
			}
			if len(v.Secret.Items) == 0 {
				return v.Secret.SecretName, rel, true
			}
			for _, it := range v.Secret.Items {
				if it.Path == rel {
					return v.Secret.SecretName, it.Key, true
				}
			}
		}
	}
	return "", "", false
}

// The NATS chart's values: there is no schema for them here, so the test
// checks the settings clerkjobs depends on, and that every environment
// variable accounts.conf reads comes from a Secret.
func TestNATSValues(t *testing.T) {
	b, err := os.ReadFile("nats-values.yaml")
	if err != nil {
		t.Fatal(err)
	}
	type chartTLS struct {
		Enabled    bool           `json:"enabled"`
		SecretName string         `json:"secretName"`
		Merge      map[string]any `json:"merge"`
	}
	var v struct {
		TLSCA struct {
			Enabled    bool   `json:"enabled"`
			SecretName string `json:"secretName"`
			Key        string `json:"key"`
		} `json:"tlsCA"`
		Config struct {
			NATS struct {
				TLS chartTLS `json:"tls"`
			} `json:"nats"`
			Cluster struct {
				Enabled  bool     `json:"enabled"`
				Replicas int      `json:"replicas"`
				TLS      chartTLS `json:"tls"`
			} `json:"cluster"`
			JetStream struct {
				Enabled   bool `json:"enabled"`
				FileStore struct {
					PVC struct {
						Size string `json:"size"`
					} `json:"pvc"`
				} `json:"fileStore"`
				MemoryStore map[string]any `json:"memoryStore"`
			} `json:"jetstream"`
			Merge map[string]any `json:"merge"`
		} `json:"config"`
		Container struct {
			Env   map[string]any `json:"env"`
			Merge struct {
				Resources corev1.ResourceRequirements `json:"resources"`
			} `json:"merge"`
		} `json:"container"`
		PodDisruptionBudget map[string]any    `json:"podDisruptionBudget"`
		PodTemplate         map[string]any    `json:"podTemplate"`
		NatsBox             map[string]any    `json:"natsBox"`
		ExtraResources      []json.RawMessage `json:"extraResources"`
	}
	// Strict against this struct: a key the test does not know about is a
	// key to check by hand against the chart, and so fails here first.
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatalf("nats-values.yaml: %v", err)
	}
	if !v.Config.Cluster.Enabled || v.Config.Cluster.Replicas != 3 {
		t.Errorf("cluster: enabled %v, replicas %d; want a three-node cluster", v.Config.Cluster.Enabled, v.Config.Cluster.Replicas)
	}
	if !v.Config.JetStream.Enabled || v.Config.JetStream.FileStore.PVC.Size == "" {
		t.Errorf("JetStream must be enabled with file storage on a PVC")
	}
	if v.Config.Merge["$include"] != "accounts.conf" {
		t.Errorf("config.merge.$include = %v, want accounts.conf", v.Config.Merge["$include"])
	}
	// Clients and routes over TLS, with certs.sh's Secrets; routes present
	// the certificate (verify), so that no other pod joins the cluster.
	if ca := v.TLSCA; !ca.Enabled || ca.SecretName != "nats-ca" || ca.Key != "ca.crt" {
		t.Errorf("tlsCA = %+v, want enabled from the Secret nats-ca, key ca.crt", ca)
	}
	if c := v.Config.NATS.TLS; !c.Enabled || c.SecretName != "nats-server-tls" {
		t.Errorf("config.nats.tls = %+v, want enabled with the Secret nats-server-tls", c)
	}
	if c := v.Config.Cluster.TLS; !c.Enabled || c.SecretName != "nats-server-tls" || c.Merge["verify"] != true {
		t.Errorf("config.cluster.tls = %+v, want enabled with the Secret nats-server-tls and merge.verify true", c)
	}
	if v.Container.Merge.Resources.Limits.Memory().IsZero() {
		t.Error("set a memory limit for the NATS servers")
	}
	var policies []*networkingv1.NetworkPolicy
	for i, raw := range v.ExtraResources {
		obj, err := decodeStrict(raw)
		if err != nil {
			t.Errorf("extraResources[%d]: %v", i, err)
			continue
		}
		if np, ok := obj.(*networkingv1.NetworkPolicy); ok {
			policies = append(policies, np)
		}
	}
	t.Run("no Kubernetes API token in the NATS pods", func(t *testing.T) {
		// The chart runs the pods under the namespace's default service
		// account (serviceAccount.enabled: false) with its token mounted,
		// unless the pod template says otherwise; NATS and the config
		// reloader never call the Kubernetes API.
		raw, err := yaml.Marshal(v.PodTemplate["merge"])
		if err != nil {
			t.Fatal(err)
		}
		var pod corev1.Pod
		if err := yaml.UnmarshalStrict(raw, &pod); err != nil {
			t.Fatalf("podTemplate.merge: %v", err)
		}
		if a := pod.Spec.AutomountServiceAccountToken; a == nil || *a {
			t.Error("podTemplate.merge.spec.automountServiceAccountToken: want false (the NATS pods need no Kubernetes API token)")
		}
	})
	t.Run("only NATS pods reach the route and monitoring ports", func(t *testing.T) {
		checkNATSIngress(t, policies)
	})

	acc, err := os.ReadFile(filepath.Join("..", "nats", "accounts.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`password: \$([A-Z0-9_]+)`).FindAllSubmatch(acc, -1) {
		name := string(m[1])
		e, ok := v.Container.Env[name]
		if !ok {
			t.Errorf("accounts.conf reads %s, which container.env does not set", name)
			continue
		}
		// The chart takes a map value as the rest of an EnvVar.
		raw, _ := yaml.Marshal(e)
		var ev corev1.EnvVar
		if err := yaml.UnmarshalStrict(raw, &ev); err != nil || ev.ValueFrom == nil || ev.ValueFrom.SecretKeyRef == nil {
			t.Errorf("container.env.%s = %s: want valueFrom.secretKeyRef (%v)", name, bytes.TrimSpace(raw), err)
		}
	}
}

// natsPod and otherPod are the labels of a pod of the NATS chart installed
// as README says (release "nats": the chart's selector labels) and of any
// other pod (a worker, or anything else on the cluster's network).
var (
	natsPod  = labels.Set{"app.kubernetes.io/name": "nats", "app.kubernetes.io/instance": "nats", "app.kubernetes.io/component": "nats"}
	otherPod = labels.Set{"app.kubernetes.io/name": "clerkjobs-worker"}
	// natsPorts are the chart's container port names.
	natsPorts = map[string]int{"nats": 4222, "cluster": 6222, "monitor": 8222}
)

// checkNATSIngress checks what the NetworkPolicies of the NATS chart's
// values let through to the NATS pods. The chart's cluster block has no
// route authorization (a password there would sit in a ConfigMap), and a
// NATS server accepts any route that reaches its cluster port: a pod that
// connects to 6222 speaking the route protocol (another nats-server will
// do) joins the cluster, hears every account's messages (the worker's
// token replies) and can publish into any of them. So the route port, like
// monitoring, must admit the NATS pods only; clients (4222) authenticate.
func checkNATSIngress(t *testing.T, policies []*networkingv1.NetworkPolicy) {
	t.Helper()
	var selecting []*networkingv1.NetworkPolicy
	for _, np := range policies {
		sel, err := metav1.LabelSelectorAsSelector(&np.Spec.PodSelector)
		if err != nil {
			t.Fatalf("NetworkPolicy %s: %v", np.Name, err)
		}
		ingress := len(np.Spec.PolicyTypes) == 0 || slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress)
		if sel.Matches(natsPod) && ingress {
			selecting = append(selecting, np)
		}
	}
	if len(selecting) == 0 {
		t.Fatal("no NetworkPolicy in extraResources selects the NATS pods: any pod reaching port 6222 joins the cluster as a route and hears every account (tokens included)")
	}
	for _, c := range []struct {
		what      string
		from      labels.Set
		otherNS   bool
		port      int
		wantAdmit bool
	}{
		{"another pod to the route port", otherPod, false, 6222, false},
		{"a pod of another namespace to the route port", natsPod, true, 6222, false},
		{"another pod to the monitoring port", otherPod, false, 8222, false},
		{"a NATS pod to the route port", natsPod, false, 6222, true},
		{"a client to the client port", otherPod, false, 4222, true},
		{"a client of another namespace to the client port", otherPod, true, 4222, true},
	} {
		if got := admits(selecting, c.from, c.otherNS, c.port); got != c.wantAdmit {
			t.Errorf("%s: admitted %v, want %v", c.what, got, c.wantAdmit)
		}
	}
}

// admits reports whether any of the policies lets a pod labelled from (in
// the policies' namespace, or in another one) connect to port.
func admits(policies []*networkingv1.NetworkPolicy, from labels.Set, otherNS bool, port int) bool {
	for _, np := range policies {
		for _, rule := range np.Spec.Ingress {
			portOK := len(rule.Ports) == 0
			for _, p := range rule.Ports {
				n := p.Port
				switch {
				case n == nil:
					portOK = true
				case n.StrVal != "" && natsPorts[n.StrVal] == port, n.StrVal == "" && n.IntValue() == port:
					portOK = true
				case p.EndPort != nil && n.StrVal == "" && n.IntValue() <= port && port <= int(*p.EndPort):
					portOK = true
				}
			}
			if !portOK {
				continue
			}
			if len(rule.From) == 0 {
				return true
			}
			for _, peer := range rule.From {
				switch {
				case peer.IPBlock != nil:
					return true
				case peer.NamespaceSelector != nil:
					// Some namespace's pods: which is not known here.
					if peer.PodSelector == nil {
						return true
					}
					if sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector); err != nil || sel.Matches(from) {
						return true
					}
				case peer.PodSelector != nil && !otherNS:
					if sel, err := metav1.LabelSelectorAsSelector(peer.PodSelector); err != nil || sel.Matches(from) {
						return true
					}
				}
			}
		}
	}
	return false
}

// The commands the deployment documents put secrets into Kubernetes from
// files, never as arguments: a command line is visible to every local user
// in ps and /proc while it runs, and stays in the shell's history.
func TestSecretsNotOnCommandLines(t *testing.T) {
	files := []string{filepath.Join("..", "README.md"), "nats-values.yaml"}
	more, err := filepath.Glob(filepath.Join("worker", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, more...) {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(b), "\n") {
			if strings.Contains(line, "--from-literal=") {
				t.Errorf("%s:%d: %s: a secret given with --from-literal is on the command line; use --from-file", f, i+1, strings.TrimSpace(line))
			}
		}
	}
}
