package cni

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	"github.com/containernetworking/cni/pkg/version"
)

// SupportedVersions are the CNI spec versions kovn-cni accepts: 1.0.0 and
// later only, so there is one result format to get right. STATUS and GC
// need a configuration at 1.1.0.
func SupportedVersions() version.PluginInfo {
	return version.PluginSupports("1.0.0", "1.1.0")
}

// Plugin is the kovn-cni binary: each command forwards to kovn-node.
type Plugin struct {
	// Stdout receives the result or error JSON (os.Stdout in the binary).
	Stdout io.Writer
	// Timeout is how long to wait for kovn-node (DefaultClientTimeout if 0).
	Timeout time.Duration

	// confVersion is the cniVersion of the configuration being served,
	// remembered so an error is printed in the version asked for.
	confVersion string
}

// NewPlugin returns a Plugin that prints to stdout.
func NewPlugin(stdout io.Writer) *Plugin {
	return &Plugin{Stdout: stdout}
}

// Funcs are the skel callbacks.
func (p *Plugin) Funcs() skel.CNIFuncs {
	return skel.CNIFuncs{Add: p.Add, Del: p.Del, Check: p.Check, Status: p.Status, GC: p.GC}
}

// Main runs one invocation as skel reads it from the environment and stdin,
// prints any error as CNI error JSON and returns the exit code. skel prints
// the VERSION answer to os.Stdout itself.
func (p *Plugin) Main(about string) int {
	e := skel.PluginMainFuncsWithError(p.Funcs(), SupportedVersions(), about)
	if e == nil {
		return 0
	}
	if err := p.printError(e); err != nil {
		return 2
	}
	return 1
}

// Add prints kovn-node's result converted to the configuration's version.
func (p *Plugin) Add(args *skel.CmdArgs) error {
	conf, resp, err := p.forward(args, CommandAdd)
	if err != nil {
		return err
	}
	res, err := resp.Result.GetAsVersion(conf.CNIVersion)
	if err != nil {
		return types.NewError(types.ErrIncompatibleCNIVersion,
			fmt.Sprintf("cannot convert kovn-node's result to version %s", conf.CNIVersion), err.Error())
	}
	return res.PrintTo(p.Stdout)
}

// Del fails when kovn-node cannot be reached rather than pretending the
// pod is gone: its OVS port would leak. The runtime retries DEL, and
// kovn-node answers it once back (a pod it no longer has succeeds).
func (p *Plugin) Del(args *skel.CmdArgs) error {
	_, _, err := p.forward(args, CommandDel)
	return err
}

// Check asks kovn-node to verify the pod's interface and port.
func (p *Plugin) Check(args *skel.CmdArgs) error {
	_, _, err := p.forward(args, CommandCheck)
	return err
}

// Status reports 50 (plugin not available) when kovn-node is down, so the
// runtime marks the network not ready instead of scheduling ADDs that fail.
func (p *Plugin) Status(args *skel.CmdArgs) error {
	_, _, err := p.forward(args, CommandStatus)
	var cerr *types.Error
	if errors.As(err, &cerr) && cerr.Code == types.ErrTryAgainLater {
		return types.NewError(types.ErrPluginNotAvailable, cerr.Msg, cerr.Details)
	}
	return err
}

// GC forwards the runtime's list of valid attachments.
func (p *Plugin) GC(args *skel.CmdArgs) error {
	_, _, err := p.forward(args, CommandGC)
	return err
}

func (p *Plugin) forward(args *skel.CmdArgs, command string) (*NetConf, *Response, error) {
	conf, err := ParseNetConf(args.StdinData)
	if err != nil {
		return nil, nil, err
	}
	p.confVersion = conf.CNIVersion
	resp, err := Forward(conf.SocketPath, args, command, p.Timeout)
	if err != nil {
		return nil, nil, err
	}
	if resp.Error != nil {
		return nil, nil, resp.Error
	}
	return conf, resp, nil
}

// printError writes the spec's error object, which unlike types.Error.Print
// carries cniVersion.
func (p *Plugin) printError(e *types.Error) error {
	ver := p.confVersion
	if ver == "" {
		supported := SupportedVersions().SupportedVersions()
		ver = supported[len(supported)-1]
	}
	data, err := json.MarshalIndent(struct {
		CNIVersion string `json:"cniVersion"`
		*types.Error
	}{ver, e}, "", "    ")
	if err != nil {
		return err
	}
	_, err = p.Stdout.Write(data)
	return err
}
