package coredns

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/yaml"
)

func goodParams() Params {
	return Params{Image: "kovn.local/coredns:v1.12.1", ClusterIP: "10.96.0.10", Domain: "cluster.local", Replicas: 2}
}

// decodeAll decodes every document into its registered type, and again
// strictly, so an unknown kind or a misspelt field fails.
func decodeAll(t *testing.T, y []byte) []runtime.Object {
	t.Helper()
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(y)))
	var objs []runtime.Object
	for {
		doc, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if len(bytes.TrimSpace(doc)) == 0 {
			t.Fatalf("empty document in\n%s", y)
		}
		obj, _, err := scheme.Codecs.UniversalDeserializer().Decode(doc, nil, nil)
		if err != nil {
			t.Fatalf("decoding %s: %v", doc, err)
		}
		strict := reflect.New(reflect.TypeOf(obj).Elem()).Interface()
		if err := yaml.UnmarshalStrict(doc, strict); err != nil {
			t.Fatalf("strict decoding %s: %v", doc, err)
		}
		objs = append(objs, obj)
	}
	return objs
}

func TestManifests(t *testing.T) {
	p := goodParams()
	y, err := Manifests(p)
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeAll(t, y)
	var kinds []string
	for _, o := range objs {
		kinds = append(kinds, reflect.TypeOf(o).Elem().Name())
	}
	wantKinds := []string{"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "Deployment", "Service"}
	if !reflect.DeepEqual(kinds, wantKinds) {
		t.Fatalf("kinds %v; want %v", kinds, wantKinds)
	}
	sa := objs[0].(*corev1.ServiceAccount)
	role := objs[1].(*rbacv1.ClusterRole)
	crb := objs[2].(*rbacv1.ClusterRoleBinding)
	cm := objs[3].(*corev1.ConfigMap)
	dep := objs[4].(*appsv1.Deployment)
	svc := objs[5].(*corev1.Service)

	for _, m := range []struct{ kind, ns, name string }{
		{"ServiceAccount", sa.Namespace, sa.Name},
		{"ConfigMap", cm.Namespace, cm.Name},
		{"Deployment", dep.Namespace, dep.Name},
		{"Service", svc.Namespace, svc.Name},
	} {
		want := "coredns"
		if m.kind == "Service" {
			want = "kube-dns"
		}
		if m.ns != "kube-system" || m.name != want {
			t.Errorf("%s is %s/%s; want kube-system/%s", m.kind, m.ns, m.name, want)
		}
	}

	if role.Name != "system:coredns" {
		t.Errorf("ClusterRole %q", role.Name)
	}
	granted := map[string]bool{}
	for _, r := range role.Rules {
		if !reflect.DeepEqual(r.Verbs, []string{"list", "watch"}) {
			t.Errorf("rule %v grants %v; CoreDNS only lists and watches", r.Resources, r.Verbs)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				granted[g+"/"+res] = true
			}
		}
	}
	for _, want := range []string{"/services", "/namespaces", "/pods", "discovery.k8s.io/endpointslices"} {
		if !granted[want] {
			t.Errorf("ClusterRole does not grant %s", want)
		}
	}
	if len(granted) != 4 {
		t.Errorf("ClusterRole grants %v; want only what the kubernetes plugin watches", granted)
	}
	if crb.RoleRef.Kind != "ClusterRole" || crb.RoleRef.Name != "system:coredns" ||
		len(crb.Subjects) != 1 || crb.Subjects[0].Kind != "ServiceAccount" ||
		crb.Subjects[0].Name != "coredns" || crb.Subjects[0].Namespace != "kube-system" {
		t.Errorf("ClusterRoleBinding %+v %+v", crb.RoleRef, crb.Subjects)
	}

	cf := cm.Data["Corefile"]
	for _, want := range []string{
		".:53 {",
		"health {\n        lameduck 5s\n    }",
		"kubernetes cluster.local in-addr.arpa ip6.arpa {\n        pods insecure\n        fallthrough in-addr.arpa ip6.arpa\n        ttl 30\n    }",
		"prometheus :9153", "cache 30", "reload", "loadbalance", "ready", "errors",
	} {
		if !strings.Contains(cf, want) {
			t.Errorf("Corefile lacks %q:\n%s", want, cf)
		}
	}
	for _, bad := range []string{"forward", "loop", "/etc/resolv.conf"} {
		if strings.Contains(cf, bad) {
			t.Errorf("Corefile mentions %q:\n%s", bad, cf)
		}
	}

	if dep.Labels["k8s-app"] != "kube-dns" || dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("Deployment labels %v replicas %v", dep.Labels, dep.Spec.Replicas)
	}
	if dep.Spec.Selector.MatchLabels["k8s-app"] != "kube-dns" || dep.Spec.Template.Labels["k8s-app"] != "kube-dns" {
		t.Errorf("Deployment selector %v template labels %v", dep.Spec.Selector, dep.Spec.Template.Labels)
	}
	ps := dep.Spec.Template.Spec
	if ps.ServiceAccountName != "coredns" || ps.DNSPolicy != corev1.DNSDefault || ps.PriorityClassName != "system-cluster-critical" {
		t.Errorf("pod spec: serviceAccount %q dnsPolicy %q priorityClass %q", ps.ServiceAccountName, ps.DNSPolicy, ps.PriorityClassName)
	}
	if len(ps.Tolerations) != 1 || ps.Tolerations[0].Key != "CriticalAddonsOnly" || ps.Tolerations[0].Operator != corev1.TolerationOpExists {
		t.Errorf("tolerations %+v", ps.Tolerations)
	}
	if len(ps.Containers) != 1 {
		t.Fatalf("%d containers", len(ps.Containers))
	}
	c := ps.Containers[0]
	if c.Image != p.Image || c.ImagePullPolicy != corev1.PullIfNotPresent {
		t.Errorf("image %q pull %q", c.Image, c.ImagePullPolicy)
	}
	if !reflect.DeepEqual(c.Args, []string{"-conf", "/etc/coredns/Corefile"}) {
		t.Errorf("args %v", c.Args)
	}
	var ports []string
	for _, cp := range c.Ports {
		ports = append(ports, cp.Name+"="+string(cp.Protocol)+"/"+itoa(cp.ContainerPort))
	}
	if want := []string{"dns=UDP/53", "dns-tcp=TCP/53", "metrics=TCP/9153"}; !reflect.DeepEqual(ports, want) {
		t.Errorf("container ports %v; want %v", ports, want)
	}
	if r := c.ReadinessProbe; r == nil || r.HTTPGet == nil || r.HTTPGet.Path != "/ready" || r.HTTPGet.Port.IntValue() != 8181 {
		t.Errorf("readiness probe %+v", r)
	}
	if l := c.LivenessProbe; l == nil || l.HTTPGet == nil || l.HTTPGet.Path != "/health" || l.HTTPGet.Port.IntValue() != 8080 {
		t.Errorf("liveness probe %+v", l)
	}
	if c.Resources.Requests.Cpu().IsZero() || c.Resources.Requests.Memory().IsZero() || c.Resources.Limits.Memory().IsZero() {
		t.Errorf("resources %+v", c.Resources)
	}
	sc := c.SecurityContext
	if sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil ||
		!reflect.DeepEqual(sc.Capabilities.Add, []corev1.Capability{"NET_BIND_SERVICE"}) ||
		!reflect.DeepEqual(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) {
		t.Errorf("security context %+v", sc)
	}
	if len(c.VolumeMounts) != 1 || c.VolumeMounts[0].MountPath != "/etc/coredns" || len(ps.Volumes) != 1 ||
		ps.Volumes[0].Name != c.VolumeMounts[0].Name || ps.Volumes[0].ConfigMap == nil || ps.Volumes[0].ConfigMap.Name != "coredns" {
		t.Errorf("volumes %+v mounts %+v", ps.Volumes, c.VolumeMounts)
	}

	if svc.Spec.ClusterIP != "10.96.0.10" || svc.Spec.Selector["k8s-app"] != "kube-dns" {
		t.Errorf("Service clusterIP %q selector %v", svc.Spec.ClusterIP, svc.Spec.Selector)
	}
	ports = nil
	for _, sp := range svc.Spec.Ports {
		ports = append(ports, sp.Name+"="+string(sp.Protocol)+"/"+itoa(sp.Port)+">"+sp.TargetPort.String())
	}
	if want := []string{"dns=UDP/53>53", "dns-tcp=TCP/53>53", "metrics=TCP/9153>9153"}; !reflect.DeepEqual(ports, want) {
		t.Errorf("Service ports %v; want %v", ports, want)
	}
}

func itoa(i int32) string { return strconv.Itoa(int(i)) }

func TestManifestsDomainAndIPv6(t *testing.T) {
	p := goodParams()
	p.Domain, p.ClusterIP, p.Replicas = "lab.example", "fd00:10:96::a", 1
	y, err := Manifests(p)
	if err != nil {
		t.Fatal(err)
	}
	objs := decodeAll(t, y)
	if cf := objs[3].(*corev1.ConfigMap).Data["Corefile"]; !strings.Contains(cf, "kubernetes lab.example in-addr.arpa ip6.arpa {") {
		t.Errorf("Corefile ignores the domain:\n%s", cf)
	}
	if ip := objs[5].(*corev1.Service).Spec.ClusterIP; ip != p.ClusterIP {
		t.Errorf("clusterIP %q", ip)
	}
	if r := objs[4].(*appsv1.Deployment).Spec.Replicas; *r != 1 {
		t.Errorf("replicas %d", *r)
	}
}

func TestManifestsRejectsBadParams(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(*Params)
		want string
	}{
		{"no image", func(p *Params) { p.Image = "" }, "empty image"},
		{"blank image", func(p *Params) { p.Image = "  " }, "empty image"},
		{"spaced image", func(p *Params) { p.Image = "a b" }, "white space"},
		{"no IP", func(p *Params) { p.ClusterIP = "" }, "cluster IP"},
		{"bad IP", func(p *Params) { p.ClusterIP = "10.96.0.256" }, "cluster IP"},
		{"CIDR", func(p *Params) { p.ClusterIP = "10.96.0.10/32" }, "cluster IP"},
		{"None", func(p *Params) { p.ClusterIP = "None" }, "cluster IP"},
		{"unspecified", func(p *Params) { p.ClusterIP = "0.0.0.0" }, "not a unicast"},
		{"no domain", func(p *Params) { p.Domain = "" }, "domain"},
		{"trailing dot", func(p *Params) { p.Domain = "cluster.local." }, "domain"},
		{"upper case", func(p *Params) { p.Domain = "Cluster.Local" }, "domain"},
		{"zero replicas", func(p *Params) { p.Replicas = 0 }, "replicas 0"},
		{"negative replicas", func(p *Params) { p.Replicas = -1 }, "replicas -1"},
		{"too many replicas", func(p *Params) { p.Replicas = 1 << 40 }, "replicas"},
	} {
		p := goodParams()
		tc.edit(&p)
		y, err := Manifests(p)
		if err == nil {
			t.Errorf("%s: Manifests(%+v) succeeded:\n%s", tc.name, p, y)
			continue
		}
		if !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %q does not mention %q", tc.name, err, tc.want)
		}
	}
}
