package cni

import (
	"encoding/json"
	"testing"

	types100 "github.com/containernetworking/cni/pkg/types/100"
)

func TestParseNetConfDefaultsAndRuntimeConfig(t *testing.T) {
	conf, err := ParseNetConf([]byte(`{"cniVersion":"1.0.0","name":"kovn","type":"kovn-cni",
		"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]},
		"prevResult":{"cniVersion":"1.0.0","ips":[{"address":"10.128.1.5/24"}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if conf.SocketPath != DefaultSocketPath {
		t.Errorf("socketPath = %q, want default %q", conf.SocketPath, DefaultSocketPath)
	}
	if pm := conf.RuntimeConfig.PortMappings; len(pm) != 1 || pm[0].HostPort != 8080 || pm[0].ContainerPort != 80 {
		t.Errorf("portMappings = %+v", pm)
	}
	prev, err := types100.GetResult(conf.PrevResult)
	if err != nil {
		t.Fatalf("prevResult not parsed: %v", err)
	}
	if len(prev.IPs) != 1 || prev.IPs[0].Address.String() != "10.128.1.5/24" {
		t.Errorf("prevResult IPs = %v", prev.IPs)
	}
}

func TestParseNetConfSocketPathAndErrors(t *testing.T) {
	conf, err := ParseNetConf([]byte(`{"cniVersion":"1.1.0","name":"kovn","socketPath":"/run/x.sock"}`))
	if err != nil || conf.SocketPath != "/run/x.sock" {
		t.Fatalf("conf = %+v, err = %v", conf, err)
	}
	if _, err := ParseNetConf([]byte(`{not json`)); err == nil {
		t.Error("bad JSON accepted")
	}
}

func TestNewRequestParsesPodArgs(t *testing.T) {
	req := NewRequest(CommandAdd, testArgs("c1", `{"name":"kovn"}`))
	if req.PodNamespace != "ns1" || req.PodName != "web-0" || req.PodUID != "uid-1" || req.PodKey() != "ns1/web-0" {
		t.Errorf("pod fields = %q %q %q", req.PodNamespace, req.PodName, req.PodUID)
	}
	// The raw config travels as JSON, not as a quoted string.
	data, _ := json.Marshal(req)
	var wire map[string]any
	_ = json.Unmarshal(data, &wire)
	if cfg, ok := wire["config"].(map[string]any); !ok || cfg["name"] != "kovn" {
		t.Errorf("config on the wire = %v", wire["config"])
	}
	if got := NewRequest(CommandAdd, testArgs("c1", "{}")); got.Args == "" {
		t.Error("raw CNI_ARGS lost")
	}
	if kv := parseCNIArgs("A=1;;B=x=y;=z;C"); kv["A"] != "1" || kv["B"] != "x=y" || len(kv) != 2 {
		t.Errorf("parseCNIArgs = %v", kv)
	}
}
