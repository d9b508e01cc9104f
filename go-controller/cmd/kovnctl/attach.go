package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/urfave/cli/v2"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/client-go/dynamic"

	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/node/extport"
	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
)

// attachBridge is where ovn-controller binds logical ports.
const attachBridge = "br-int"

// ovsConnectTimeout bounds the connection to the local database apart from
// --timeout: it answers at once when it is up, and attach's --timeout is
// sized for waiting on the controller and ovn-controller.
const ovsConnectTimeout = 10 * time.Second

func ovsDBFlag() cli.Flag {
	return &cli.StringFlag{Name: "ovs-db", Value: ovs.DefaultEndpoint, Usage: "the local Open_vSwitch database"}
}

func attachCommand() *cli.Command {
	return &cli.Command{
		Name:      "attach",
		Usage:     "plug a local interface into br-int as an ExternalPort's port (writes the local OVS database)",
		ArgsUsage: "NAMESPACE/NAME --interface IF [--internal]",
		Description: "Waits for kovn-controller to assign the ExternalPort (status.ifaceID, status.ips), refuses\n" +
			"when its spec.chassis is not this host, then plugs --interface (an existing tap or veth end)\n" +
			"into br-int with that iface-id, or with --internal creates it as an OVS internal port with\n" +
			"the port's MAC, address, MTU and routes, and waits for ovn-controller's ovn-installed.\n" +
			"Run it as root on the host. Its flags may come before or after NAMESPACE/NAME, and\n" +
			"--kubeconfig and --timeout before or after the command.",
		Flags: []cli.Flag{
			// Not Required: urfave/cli would check before withTrailingFlags
			// has read flags given after NAMESPACE/NAME.
			&cli.StringFlag{Name: "interface", Aliases: []string{"i"}, Usage: "the interface to plug (with --internal: to create); required"},
			&cli.BoolFlag{Name: "internal", Usage: "create --interface as an OVS internal port carrying the port's address (a bare-metal host's own)"},
			ovsDBFlag(),
			&cli.StringFlag{Name: "kubeconfig", Usage: "as the global --kubeconfig"},
			&cli.DurationFlag{Name: "timeout", Value: 30 * time.Second, Usage: "for the whole command: the controller's status, plugging and ovn-installed"},
		},
		Action: runAttach,
	}
}

func detachCommand() *cli.Command {
	return &cli.Command{
		Name:      "detach",
		Usage:     "unplug an interface attach plugged from br-int (writes the local OVS database)",
		ArgsUsage: "--interface IF",
		Description: "Removes the port of --interface from br-int; an internal port's device goes with it.\n" +
			"Only ports attach made (external_ids:" + extport.KeyExternalPort + ") are removed; an absent one is fine.",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "interface", Aliases: []string{"i"}, Required: true, Usage: "the interface to unplug"},
			ovsDBFlag(),
		},
		Action: func(c *cli.Context) error {
			if c.NArg() != 0 {
				return cli.Exit("usage: kovnctl detach --interface IF", 2)
			}
			e, err := newEnv(c)
			if err != nil {
				return err
			}
			ctx, cancel := context.WithTimeout(c.Context, e.timeout)
			defer cancel()
			o, err := ovs.Connect(ctx, c.String("ovs-db"))
			if err != nil {
				return err
			}
			defer o.Close()
			iface := c.String("interface")
			if err := extport.Unplug(ctx, o, attachBridge, iface); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "detached: %s (no longer a port of %s)\n", iface, attachBridge)
			return nil
		},
	}
}

// attachResult is what attach prints, one line per field.
type attachResult struct {
	ExternalPort string   `json:"externalPort"`
	Interface    string   `json:"interface"`
	PortType     string   `json:"portType"`
	IfaceID      string   `json:"ifaceID"`
	IP           string   `json:"ip"`
	MAC          string   `json:"mac,omitempty"`
	Gateway      string   `json:"gateway,omitempty"`
	Routes       []string `json:"routes,omitempty"`
	Chassis      string   `json:"chassis"`
	SpecChassis  string   `json:"specChassis"`
	// Installed is how long plugging took until ovn-controller set
	// ovn-installed (the database write and, with --internal, the link
	// set-up included: milliseconds).
	Installed string `json:"installed"`
}

func runAttach(c *cli.Context) error {
	const usage = "usage: kovnctl attach NAMESPACE/NAME --interface IF [--internal]"
	ns, name, ok := strings.Cut(c.Args().First(), "/")
	if c.NArg() < 1 || !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return cli.Exit(usage, 2)
	}
	fc, err := withTrailingFlags(c)
	if err != nil || fc == nil {
		return err
	}
	flagc := func(name string) *cli.Context { return flagContext(fc, name) }
	req := attachRequest{namespace: ns, name: name, iface: flagc("interface").String("interface"), internal: flagc("internal").Bool("internal")}
	if req.iface == "" {
		return cli.Exit("attach needs --interface\n"+usage, 2)
	}
	e, err := newEnv(c)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.Context, flagc("timeout").Duration("timeout"))
	defer cancel()
	d := attachDeps{}
	if d.dc, err = dynamicClient(fc); err != nil {
		return err
	}
	if d.o, err = connectOVS(ctx, flagc("ovs-db").String("ovs-db")); err != nil {
		return err
	}
	defer d.o.Close()
	d.hostname, _ = os.Hostname()
	res, err := attach(ctx, d, req)
	if err != nil {
		return err
	}
	if e.json {
		return e.printJSON(res)
	}
	return writeAttach(e.out, res)
}

// attachRequest is what attach was asked; attachDeps what it works with.
type attachRequest struct {
	namespace, name, iface string
	internal               bool
}

type attachDeps struct {
	dc       dynamic.Interface
	o        *ovs.Client
	hostname string // the kernel's; see forHost
}

// attach waits for the port's status, checks the chassis and plugs,
// within ctx's deadline.
func attach(ctx context.Context, d attachDeps, req attachRequest) (*attachResult, error) {
	systemID, err := d.o.ChassisID(ctx)
	if err != nil {
		return nil, fmt.Errorf("this host's chassis: %w", err)
	}
	key := req.namespace + "/" + req.name
	ep, err := kube.WaitExternalPort(ctx, d.dc, req.namespace, req.name, func(ep *kube.ExternalPort) bool {
		return !forHost(ep, systemID, d.hostname) || assigned(ep, req.internal)
	})
	if err != nil {
		if ep != nil && ctx.Err() != nil {
			return nil, fmt.Errorf("externalport %s is not assigned yet: %s (%w)", key, missing(ep, req.internal), err)
		}
		return nil, err
	}
	if !forHost(ep, systemID, d.hostname) {
		return nil, fmt.Errorf("externalport %s is for chassis %q, and this host is chassis %q (hostname %q): run attach there, or change its spec.chassis",
			key, ep.Spec.Chassis, systemID, d.hostname)
	}
	res := &attachResult{ExternalPort: key, Interface: req.iface, PortType: "system", IfaceID: ep.Status.IfaceID,
		IP: ep.Status.IPs[0], MAC: ep.Status.MAC, Gateway: ep.Status.Gateway, Chassis: systemID, SpecChassis: ep.Spec.Chassis}
	start := time.Now()
	if req.internal {
		res.PortType, res.Routes = "internal", ep.Status.Routes
		err = extport.PlugInternal(ctx, d.o, attachBridge, req.iface, ep.Status.IfaceID, &ep.Status, remaining(ctx))
	} else {
		err = extport.Plug(ctx, d.o, attachBridge, req.iface, ep.Status.IfaceID, remaining(ctx))
	}
	if err != nil {
		err = fmt.Errorf("attach %s to %s: %w", req.iface, key, err)
		if plugged(ctx, d.o, req.iface) {
			// Left for ovn-controller to bind late, and to look at.
			err = fmt.Errorf("%w\n(%s stays on %s: `kovnctl detach --interface %s` removes it)", err, req.iface, attachBridge, req.iface)
		}
		return nil, err
	}
	res.Installed = time.Since(start).Round(time.Millisecond).String()
	return res, nil
}

func writeAttach(out io.Writer, r *attachResult) error {
	chassis := r.Chassis
	if r.SpecChassis != r.Chassis {
		chassis += fmt.Sprintf(" (spec.chassis %q names it by hostname)", r.SpecChassis)
	}
	lines := [][2]string{
		{"externalport", r.ExternalPort},
		{"interface", fmt.Sprintf("%s (%s port on %s)", r.Interface, r.PortType, attachBridge)},
		{"iface-id", r.IfaceID},
		{"ip", r.IP},
		{"mac", r.MAC},
		{"gateway", r.Gateway},
	}
	if r.PortType == "internal" {
		lines = append(lines, [2]string{"routes", strings.Join(r.Routes, ", ")})
	}
	lines = append(lines, [2]string{"chassis", chassis}, [2]string{"ovn-installed", "after " + r.Installed})
	for _, l := range lines {
		if _, err := fmt.Fprintf(out, "%-14s %s\n", l[0]+":", l[1]); err != nil {
			return err
		}
	}
	return nil
}

// forHost reports whether the port is to bind on this host: OVN's
// requested-chassis matches a chassis' name (system-id) or its hostname.
// The hostname compared is the kernel's, which is ovn-controller's unless
// external_ids:hostname says otherwise (kovn-node sets it to --node-name,
// the kernel's hostname by default).
func forHost(ep *kube.ExternalPort, systemID, hostname string) bool {
	return ep.Spec.Chassis == systemID || (hostname != "" && ep.Spec.Chassis == hostname)
}

// assigned reports whether the status has what the plug needs: an
// internal port also needs the MAC.
func assigned(ep *kube.ExternalPort, internal bool) bool {
	return extport.Assigned(&ep.Status) && (!internal || ep.Status.MAC != "")
}

// missing says what the controller has not written yet, and what it says
// about the port, for a timeout's message.
func missing(ep *kube.ExternalPort, internal bool) string {
	var lack []string
	if ep.Status.IfaceID == "" {
		lack = append(lack, "status.ifaceID")
	}
	if len(ep.Status.IPs) == 0 {
		lack = append(lack, "status.ips")
	}
	if internal && ep.Status.MAC == "" {
		lack = append(lack, "status.mac")
	}
	msg := "no " + strings.Join(lack, ", ") + " from kovn-controller (is it running?)"
	if cond := meta.FindStatusCondition(ep.Status.Conditions, kube.ExternalPortReady); cond != nil {
		msg += fmt.Sprintf("; condition %s=%s %s: %s", cond.Type, cond.Status, cond.Reason, cond.Message)
	}
	return msg
}

func connectOVS(ctx context.Context, endpoint string) (*ovs.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, ovsConnectTimeout)
	defer cancel()
	return ovs.Connect(ctx, endpoint)
}

// dynamicClient reads ExternalPorts. The kubeconfig is found as for the
// other commands (flag, KUBECONFIG, ~/.kube/config, in-cluster), but it is
// required here.
func dynamicClient(c *cli.Context) (dynamic.Interface, error) {
	cc, ok := clientConfig(flagContext(c, "kubeconfig").String("kubeconfig"))
	if !ok {
		return nil, cli.Exit("attach reads the ExternalPort from the API: pass --kubeconfig or set KUBECONFIG", 2)
	}
	return kube.NewDynamic(cc)
}

// withTrailingFlags lets attach take its flags after NAMESPACE/NAME too,
// as in `attach NS/NAME --interface IF`: urfave/cli stops parsing flags at
// the first argument, so what follows it is parsed here, with the same
// flags, into a context whose parent is c (see flagContext). A nil
// context with a nil error means help was shown.
func withTrailingFlags(c *cli.Context) (*cli.Context, error) {
	if c.NArg() <= 1 {
		return c, nil
	}
	set := flag.NewFlagSet(c.Command.Name, flag.ContinueOnError)
	set.SetOutput(io.Discard)
	for _, f := range c.Command.Flags {
		if err := f.Apply(set); err != nil {
			return nil, err
		}
	}
	if err := set.Parse(c.Args().Tail()); err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	if set.NArg() > 0 {
		return nil, cli.Exit(fmt.Sprintf("unexpected arguments %q (one NAMESPACE/NAME only)", set.Args()), 2)
	}
	// Each name of a flag is a variable of its own in a flag.FlagSet;
	// urfave/cli copies the one given to the others, and so must this.
	var copies [][2]string
	set.Visit(func(given *flag.Flag) {
		for _, f := range c.Command.Flags {
			if names := f.Names(); slices.Contains(names, given.Name) {
				for _, n := range names {
					copies = append(copies, [2]string{n, given.Value.String()})
				}
			}
		}
	})
	for _, cp := range copies {
		if err := set.Set(cp[0], cp[1]); err != nil {
			return nil, err
		}
	}
	if h := set.Lookup("help"); h != nil && h.Value.String() == "true" {
		return nil, cli.ShowCommandHelp(c.Lineage()[1], c.Command.Name)
	}
	return cli.NewContext(c.App, set, c), nil
}

// plugged reports whether iface is a port of attachBridge now.
func plugged(ctx context.Context, o *ovs.Client, iface string) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Second)
	defer cancel()
	ports, err := o.Ports(ctx, attachBridge)
	return err == nil && slices.ContainsFunc(ports, func(p ovs.PortInfo) bool { return p.Name == iface })
}

// flagContext returns the context whose value of flag name applies when a
// command repeats a global flag: the command's when given after the
// command, else the app's when given before it (or through its
// environment variable), else the command's default.
func flagContext(c *cli.Context, name string) *cli.Context {
	for _, x := range c.Lineage() {
		if x.IsSet(name) {
			return x
		}
	}
	return c
}

func remaining(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return max(time.Until(d), 0)
	}
	return time.Minute
}
