// Package kube holds what kovn's binaries share about the Kubernetes API:
// clients tuned for bursts, and the annotations kovn reads and writes.
package kube

import (
	"fmt"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// ClientConfig says how to reach the API server.
type ClientConfig struct {
	Kubeconfig string  // empty: in-cluster
	QPS        float32 // client-go's default of 5 would cap pod set-up at 5 pods/s
	Burst      int
	UserAgent  string
	// DryRun, when set, makes every write a server-side dry run and
	// reports it here first (see DryRunWrites).
	DryRun func(method, path string)
}

// RESTConfig builds a rest.Config with protobuf and the given rate limits.
func RESTConfig(cc ClientConfig) (*rest.Config, error) {
	var cfg *rest.Config
	var err error
	if cc.Kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", cc.Kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, fmt.Errorf("kubernetes client config: %w", err)
	}
	cfg.QPS, cfg.Burst = cc.QPS, cc.Burst
	// Protobuf halves the bytes and the decode time of JSON for built-in types.
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	if cc.UserAgent != "" {
		cfg.UserAgent = cc.UserAgent
	}
	if cc.DryRun != nil {
		DryRunWrites(cfg, cc.DryRun)
	}
	return cfg, nil
}

// NewClientset builds a typed client.
func NewClientset(cc ClientConfig) (*kubernetes.Clientset, *rest.Config, error) {
	cfg, err := RESTConfig(cc)
	if err != nil {
		return nil, nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	return cs, cfg, err
}

// NewDynamic builds a dynamic client for kovn's own resources, which the
// API server serves as JSON only (protobuf is for built-in types).
func NewDynamic(cc ClientConfig) (dynamic.Interface, error) {
	cfg, err := RESTConfig(cc)
	if err != nil {
		return nil, err
	}
	cfg.AcceptContentTypes, cfg.ContentType = "application/json", "application/json"
	return dynamic.NewForConfig(cfg)
}
