package kube

import (
	"context"
	"encoding/json"
	"fmt"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/dynamic"
)

// ExternalPort (kovn.io/v1alpha1, namespaced) is a port on the pod network
// for something that is not a pod: a VM's tap or veth, or a bare-metal
// host's internal port. The controller gives it an address like a pod's
// and a logical switch port; NetworkPolicy podSelectors match its labels.
// The schema is dist/crds/externalport.yaml. kovn reads it through the
// dynamic client: one small type does not earn a generated clientset.
type ExternalPort struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`
	Spec              ExternalPortSpec   `json:"spec"`
	Status            ExternalPortStatus `json:"status,omitempty"`
}

// ExternalPortSpec says where the port binds and what it asks for.
type ExternalPortSpec struct {
	// Chassis is where the port binds: a Kubernetes node's name or the
	// system-id of a non-Kubernetes chassis. Changing it moves the port;
	// its address and MAC stay.
	Chassis string `json:"chassis"`
	// MAC is optional; the default is derived from the IP, like a pod's.
	MAC string `json:"mac,omitempty"`
	// IP is an optional static address; it must lie in the port's subnet.
	IP string `json:"ip,omitempty"`
}

// ExternalPortStatus is what the controller assigned.
type ExternalPortStatus struct {
	IPs     []string `json:"ips,omitempty"` // CIDR form: 10.128.250.5/24
	MAC     string   `json:"mac,omitempty"`
	Gateway string   `json:"gateway,omitempty"`
	// Routes are what a host that keeps its own default route needs
	// through Gateway: the cluster and service CIDRs.
	Routes []string `json:"routes,omitempty"`
	MTU    int      `json:"mtu,omitempty"`
	// IfaceID is the OVS external_ids:iface-id to give the interface.
	IfaceID string `json:"ifaceID,omitempty"`
	// Chassis is where OVN has bound the port now; "" while unbound.
	Chassis            string             `json:"chassis,omitempty"`
	ObservedGeneration int64              `json:"observedGeneration,omitempty"`
	Conditions         []metav1.Condition `json:"conditions,omitempty"`
}

// ExternalPort condition types.
const (
	// ExternalPortReady: the address is assigned and the port is in NB.
	ExternalPortReady = "Ready"
	// ExternalPortBound: ovn-controller has bound the port on a chassis.
	ExternalPortBound = "Bound"
)

// ExternalPortKind and ExternalPortAPIVersion name the type.
const (
	ExternalPortKind       = "ExternalPort"
	ExternalPortAPIVersion = "kovn.io/v1alpha1"
)

// ExternalPortResource is the resource of ExternalPorts.
func ExternalPortResource() schema.GroupVersionResource {
	return schema.GroupVersionResource{Group: "kovn.io", Version: "v1alpha1", Resource: "externalports"}
}

// ExternalPortFromUnstructured converts what the dynamic client returns.
func ExternalPortFromUnstructured(obj interface{}) (*ExternalPort, error) {
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		return nil, fmt.Errorf("not an unstructured object: %T", obj)
	}
	var ep ExternalPort
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &ep); err != nil {
		return nil, fmt.Errorf("externalport %s/%s: %w", u.GetNamespace(), u.GetName(), err)
	}
	return &ep, nil
}

// Unstructured converts back, for Events (the recorder needs an object
// that names its kind) and for creating ports in tests and tools.
func (ep *ExternalPort) Unstructured() (*unstructured.Unstructured, error) {
	cp := *ep
	cp.APIVersion, cp.Kind = ExternalPortAPIVersion, ExternalPortKind
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(&cp)
	if err != nil {
		return nil, err
	}
	return &unstructured.Unstructured{Object: m}, nil
}

// GetExternalPort reads one port.
func GetExternalPort(ctx context.Context, dc dynamic.Interface, namespace, name string) (*ExternalPort, error) {
	u, err := dc.Resource(ExternalPortResource()).Namespace(namespace).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	return ExternalPortFromUnstructured(u)
}

// PatchExternalPortStatus replaces the status (merge patch on the status
// subresource; lists are replaced whole).
func PatchExternalPortStatus(ctx context.Context, dc dynamic.Interface, namespace, name string, st *ExternalPortStatus) error {
	b, err := json.Marshal(map[string]interface{}{"status": st})
	if err != nil {
		return err
	}
	_, err = dc.Resource(ExternalPortResource()).Namespace(namespace).Patch(ctx, name, types.MergePatchType, b,
		metav1.PatchOptions{FieldManager: "kovn-controller"}, "status")
	return err
}
