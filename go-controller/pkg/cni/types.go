// Package cni is the CNI plumbing between the container runtime and
// kovn-node: the wire types, the plugin's client side (Forward, Plugin) and
// the node agent's server side (Server). The plugin binary stays stateless;
// everything that needs cluster state happens behind the socket.
package cni

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/containernetworking/cni/pkg/version"
)

// DefaultSocketPath is where kovn-node listens unless the network
// configuration names another "socketPath".
const DefaultSocketPath = "/run/kovn/cni.sock"

// CNI commands as they appear in CNI_COMMAND and Request.Command.
const (
	CommandAdd    = "ADD"
	CommandDel    = "DEL"
	CommandCheck  = "CHECK"
	CommandStatus = "STATUS"
	CommandGC     = "GC"
)

// Request is one CNI invocation as the plugin forwards it to kovn-node.
type Request struct {
	Command     string `json:"command"`
	ContainerID string `json:"containerID,omitempty"`
	Netns       string `json:"netns,omitempty"`
	IfName      string `json:"ifName,omitempty"`
	// Args is CNI_ARGS verbatim; the Pod* fields are parsed from it.
	Args         string `json:"args,omitempty"`
	PodNamespace string `json:"podNamespace,omitempty"`
	PodName      string `json:"podName,omitempty"`
	PodUID       string `json:"podUID,omitempty"`
	Path         string `json:"path,omitempty"`
	// Config is the network configuration from stdin, byte for byte, so
	// nothing the runtime injected (prevResult, runtimeConfig, …) is lost
	// even where NetConf does not model it.
	Config json.RawMessage `json:"config"`
	// NetConf is Config parsed; the server fills it, it is not sent.
	NetConf *NetConf `json:"-"`
}

// Response is kovn-node's answer: exactly one of Result and Error is set.
type Response struct {
	Result *types100.Result `json:"result,omitempty"`
	Error  *types.Error     `json:"error,omitempty"`
}

// NetConf is the kovn plugin's network configuration. Marshal Request.Config
// rather than a NetConf: the embedded types.NetConf's MarshalJSON is
// promoted and would drop the kovn fields.
type NetConf struct {
	types.NetConf
	// SocketPath is kovn-node's CNI socket (default DefaultSocketPath).
	SocketPath    string        `json:"socketPath,omitempty"`
	RuntimeConfig RuntimeConfig `json:"runtimeConfig,omitempty"`
}

// RuntimeConfig holds what the runtime injects for the capabilities the
// configuration declares.
type RuntimeConfig struct {
	PortMappings []PortMapping `json:"portMappings,omitempty"`
}

// PortMapping is one entry of the "portMappings" capability (hostPort).
type PortMapping struct {
	HostPort      int    `json:"hostPort"`
	ContainerPort int    `json:"containerPort"`
	Protocol      string `json:"protocol,omitempty"`
	HostIP        string `json:"hostIP,omitempty"`
}

// ParseNetConf decodes a network configuration and parses its prevResult,
// so a CHECK or chained handler gets a typed result.
func ParseNetConf(data []byte) (*NetConf, error) {
	conf := &NetConf{}
	if err := json.Unmarshal(data, conf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "cannot parse network configuration", err.Error())
	}
	if conf.SocketPath == "" {
		conf.SocketPath = DefaultSocketPath
	}
	if err := version.ParsePrevResult(&conf.NetConf); err != nil {
		return nil, types.NewError(types.ErrDecodingFailure, "cannot parse prevResult", err.Error())
	}
	return conf, nil
}

// NewRequest builds the Request for one plugin invocation.
func NewRequest(command string, args *skel.CmdArgs) *Request {
	req := &Request{
		Command:     command,
		ContainerID: args.ContainerID,
		Netns:       args.Netns,
		IfName:      args.IfName,
		Args:        args.Args,
		Path:        args.Path,
		Config:      json.RawMessage(args.StdinData),
	}
	kv := parseCNIArgs(args.Args)
	req.PodNamespace = kv["K8S_POD_NAMESPACE"]
	req.PodName = kv["K8S_POD_NAME"]
	req.PodUID = kv["K8S_POD_UID"]
	return req
}

// PodKey is "namespace/name", or "" outside Kubernetes.
func (r *Request) PodKey() string {
	if r.PodName == "" {
		return ""
	}
	return r.PodNamespace + "/" + r.PodName
}

func (r *Request) String() string {
	return fmt.Sprintf("%s pod=%q container=%q", r.Command, r.PodKey(), r.ContainerID)
}

// parseCNIArgs splits "K=V;K=V". Hand-rolled rather than types.LoadArgs
// because LoadArgs rejects unknown keys unless the runtime sent
// IgnoreUnknown, and runtimes add keys of their own.
func parseCNIArgs(args string) map[string]string {
	out := map[string]string{}
	for _, pair := range strings.Split(args, ";") {
		k, v, ok := strings.Cut(pair, "=")
		if k = strings.TrimSpace(k); ok && k != "" {
			out[k] = v
		}
	}
	return out
}
