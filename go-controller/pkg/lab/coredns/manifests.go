package coredns

import (
	"bytes"
	"fmt"
	"math"
	"net/netip"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"
)

// Params are what differs between labs.
type Params struct {
	// Image holds the coredns binary as its entrypoint; the Deployment
	// passes only arguments.
	Image string
	// ClusterIP is the kube-dns Service address, the one kubelets are
	// configured with as clusterDNS.
	ClusterIP string
	// Domain is the kubelets' clusterDomain, e.g. cluster.local.
	Domain   string
	Replicas int
}

const (
	namespace = "kube-system"
	name      = "coredns"
	appLabel  = "k8s-app"
	appName   = "kube-dns" // the label and Service name e2e specs and kubelets expect
	dnsPort   = 53
	metrics   = 9153
	readyPort = 8181 // the ready plugin's default
	alivePort = 8080 // the health plugin's default
)

func (p Params) validate() error {
	if strings.TrimSpace(p.Image) == "" {
		return fmt.Errorf("coredns: empty image")
	}
	if strings.ContainsAny(p.Image, " \t\n") {
		return fmt.Errorf("coredns: image %q contains white space", p.Image)
	}
	ip, err := netip.ParseAddr(p.ClusterIP)
	if err != nil {
		return fmt.Errorf("coredns: cluster IP %q: %w", p.ClusterIP, err)
	}
	if ip.Zone() != "" || ip.IsUnspecified() {
		return fmt.Errorf("coredns: cluster IP %q is not a unicast address a Service can have", p.ClusterIP)
	}
	if errs := validation.IsDNS1123Subdomain(p.Domain); len(errs) > 0 {
		return fmt.Errorf("coredns: domain %q: %s", p.Domain, strings.Join(errs, "; "))
	}
	if p.Replicas < 1 || p.Replicas > math.MaxInt32 {
		return fmt.Errorf("coredns: replicas %d out of range (at least 1)", p.Replicas)
	}
	return nil
}

// corefile is the configuration of the lab's CoreDNS: kubeadm's, minus
// forward and loop (see the package comment). "pods insecure" answers
// <dashed-ip>.<ns>.pod.<domain> without watching pods, which the e2e pod
// A-record specs need.
func corefile(domain string) string {
	return fmt.Sprintf(`.:%d {
    errors
    health {
        lameduck 5s
    }
    ready
    kubernetes %s in-addr.arpa ip6.arpa {
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
        ttl 30
    }
    prometheus :%d
    cache 30
    reload
    loadbalance
}
`, dnsPort, domain, metrics)
}

// Manifests renders the objects kubeadm creates for CoreDNS, as one
// multi-document YAML stream for kubectl apply.
func Manifests(p Params) ([]byte, error) {
	if err := p.validate(); err != nil {
		return nil, err
	}
	var out bytes.Buffer
	for i, obj := range objects(p) {
		y, err := yaml.Marshal(obj)
		if err != nil {
			return nil, fmt.Errorf("coredns: %w", err)
		}
		if i > 0 {
			out.WriteString("---\n")
		}
		out.Write(y)
	}
	return out.Bytes(), nil
}

func objects(p Params) []any {
	meta := func(n string) metav1.ObjectMeta {
		return metav1.ObjectMeta{Name: n, Namespace: namespace}
	}
	labels := map[string]string{appLabel: appName}
	replicas := int32(p.Replicas)
	maxUnavailable := intstr.FromInt32(1)
	return []any{
		&corev1.ServiceAccount{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ServiceAccount"},
			ObjectMeta: meta(name),
		},
		&rbacv1.ClusterRole{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole"},
			ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
			Rules:      rules(),
		},
		&rbacv1.ClusterRoleBinding{
			TypeMeta:   metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding"},
			ObjectMeta: metav1.ObjectMeta{Name: "system:coredns"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "system:coredns"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Name: name, Namespace: namespace}},
		},
		&corev1.ConfigMap{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
			ObjectMeta: meta(name),
			Data:       map[string]string{"Corefile": corefile(p.Domain)},
		},
		&appsv1.Deployment{
			TypeMeta: metav1.TypeMeta{APIVersion: "apps/v1", Kind: "Deployment"},
			ObjectMeta: metav1.ObjectMeta{
				Name: name, Namespace: namespace, Labels: labels,
			},
			Spec: appsv1.DeploymentSpec{
				Replicas: &replicas,
				Selector: &metav1.LabelSelector{MatchLabels: labels},
				// One at a time, so a rollout never takes all of cluster
				// DNS away.
				Strategy: appsv1.DeploymentStrategy{
					Type:          appsv1.RollingUpdateDeploymentStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDeployment{MaxUnavailable: &maxUnavailable},
				},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: labels},
					Spec:       podSpec(p),
				},
			},
		},
		&corev1.Service{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
			ObjectMeta: metav1.ObjectMeta{
				Name: appName, Namespace: namespace,
				Labels: map[string]string{
					appLabel:                        appName,
					"kubernetes.io/name":            "CoreDNS",
					"kubernetes.io/cluster-service": "true",
				},
				// Prometheus discovers the metrics port by these, as
				// kubeadm sets them.
				Annotations: map[string]string{
					"prometheus.io/port":   fmt.Sprint(metrics),
					"prometheus.io/scrape": "true",
				},
			},
			Spec: corev1.ServiceSpec{
				Selector:  labels,
				ClusterIP: p.ClusterIP,
				Ports: []corev1.ServicePort{
					{Name: "dns", Port: dnsPort, Protocol: corev1.ProtocolUDP, TargetPort: intstr.FromInt32(dnsPort)},
					{Name: "dns-tcp", Port: dnsPort, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(dnsPort)},
					{Name: "metrics", Port: metrics, Protocol: corev1.ProtocolTCP, TargetPort: intstr.FromInt32(metrics)},
				},
			},
		},
	}
}

// rules are what CoreDNS 1.12's kubernetes plugin lists and watches
// (plugin/kubernetes/controller.go). It reads EndpointSlices, not
// Endpoints, so unlike kubeadm's role this one grants no endpoints. Pods
// are watched only with "pods verified", not the lab's "pods insecure",
// but are granted as kubeadm does so that switching the ConfigMap to
// verified does not leave CoreDNS unready on a forbidden watch. The
// plugin's Nodes().Get has no caller in 1.12.1, so nodes are not granted.
func rules() []rbacv1.PolicyRule {
	lw := []string{"list", "watch"}
	return []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"namespaces", "pods", "services"}, Verbs: lw},
		{APIGroups: []string{"discovery.k8s.io"}, Resources: []string{"endpointslices"}, Verbs: lw},
	}
}

func podSpec(p Params) corev1.PodSpec {
	port := func(n string, num int32, proto corev1.Protocol) corev1.ContainerPort {
		return corev1.ContainerPort{Name: n, ContainerPort: num, Protocol: proto}
	}
	probe := func(path string, port int32) *corev1.Probe {
		return &corev1.Probe{ProbeHandler: corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{
			Path: path, Port: intstr.FromInt32(port), Scheme: corev1.URISchemeHTTP,
		}}}
	}
	liveness := probe("/health", alivePort)
	// kubeadm's timings: a CoreDNS waiting (up to 5s) for the API server
	// or busy under load is not restarted at once.
	liveness.InitialDelaySeconds, liveness.TimeoutSeconds = 60, 5
	liveness.SuccessThreshold, liveness.FailureThreshold = 1, 5
	no, yes := false, true
	return corev1.PodSpec{
		ServiceAccountName: name,
		PriorityClassName:  "system-cluster-critical",
		// CoreDNS must not resolve through itself.
		DNSPolicy:    corev1.DNSDefault,
		NodeSelector: map[string]string{"kubernetes.io/os": "linux"},
		Tolerations:  []corev1.Toleration{{Key: "CriticalAddonsOnly", Operator: corev1.TolerationOpExists}},
		// Spread the replicas so losing one node does not lose cluster DNS.
		Affinity: &corev1.Affinity{PodAntiAffinity: &corev1.PodAntiAffinity{
			PreferredDuringSchedulingIgnoredDuringExecution: []corev1.WeightedPodAffinityTerm{{
				Weight: 100,
				PodAffinityTerm: corev1.PodAffinityTerm{
					LabelSelector: &metav1.LabelSelector{MatchExpressions: []metav1.LabelSelectorRequirement{{
						Key: appLabel, Operator: metav1.LabelSelectorOpIn, Values: []string{appName},
					}}},
					TopologyKey: "kubernetes.io/hostname",
				},
			}},
		}},
		Containers: []corev1.Container{{
			Name:            name,
			Image:           p.Image,
			ImagePullPolicy: corev1.PullIfNotPresent,
			Args:            []string{"-conf", "/etc/coredns/Corefile"},
			Ports: []corev1.ContainerPort{
				port("dns", dnsPort, corev1.ProtocolUDP),
				port("dns-tcp", dnsPort, corev1.ProtocolTCP),
				port("metrics", metrics, corev1.ProtocolTCP),
			},
			Resources: corev1.ResourceRequirements{
				Requests: corev1.ResourceList{
					corev1.ResourceCPU:    resource.MustParse("100m"),
					corev1.ResourceMemory: resource.MustParse("70Mi"),
				},
				Limits: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("170Mi")},
			},
			VolumeMounts:   []corev1.VolumeMount{{Name: "config-volume", MountPath: "/etc/coredns", ReadOnly: true}},
			ReadinessProbe: probe("/ready", readyPort),
			LivenessProbe:  liveness,
			// Root in the lab, but able only to bind port 53.
			SecurityContext: &corev1.SecurityContext{
				AllowPrivilegeEscalation: &no,
				ReadOnlyRootFilesystem:   &yes,
				Capabilities: &corev1.Capabilities{
					Add:  []corev1.Capability{"NET_BIND_SERVICE"},
					Drop: []corev1.Capability{"ALL"},
				},
			},
		}},
		Volumes: []corev1.Volume{{
			Name: "config-volume",
			VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
				LocalObjectReference: corev1.LocalObjectReference{Name: name},
				Items:                []corev1.KeyToPath{{Key: "Corefile", Path: "Corefile"}},
			}},
		}},
	}
}
