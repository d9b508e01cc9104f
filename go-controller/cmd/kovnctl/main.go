// kovnctl is the operator's tool: what a Kubernetes object became in OVN
// (show), where a packet goes and which policy decides (trace), and
// whether kovn is healthy (status). It reads the API, NB and SB and never
// writes them; attach and detach write only the local host's OVS database
// and links, to plug an ExternalPort's interface. In the lab,
// `eval $(kovn-lab env)` sets everything it needs.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/ovn-kubernetes/libovsdb/client"
	"github.com/urfave/cli/v2"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/kovn-io/kovn/go-controller/pkg/kovnctl/ovndb"
	"github.com/kovn-io/kovn/go-controller/pkg/kube"
	"github.com/kovn-io/kovn/go-controller/pkg/ovsdbtls"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := newApp(os.Stdout).RunContext(ctx, os.Args); err != nil {
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			if msg := err.Error(); msg != "" {
				fmt.Fprintln(os.Stderr, "kovnctl:", msg)
			}
			os.Exit(ec.ExitCode())
		}
		fmt.Fprintln(os.Stderr, "kovnctl:", err)
		os.Exit(2)
	}
}

// newApp builds the CLI writing to out, so tests can run it in-process.
func newApp(out io.Writer) *cli.App {
	return &cli.App{
		Name:  "kovnctl",
		Usage: "explain what kovn made of the cluster in OVN, trace packets, check health",
		Description: "Addresses come from flags or the environment; the names kovn-lab env prints\n" +
			"(KUBECONFIG, OVN_NB_DB, OVN_SB_DB) are accepted, so in the lab:\n" +
			"  eval $(kovn-lab env); kovnctl status",
		Writer:   out,
		Flags:    globalFlags(),
		Commands: []*cli.Command{showCommand(), traceCommand(), statusCommand(), attachCommand(), detachCommand()},
		// Exit codes: 0 fine, 1 status found problems, 2 usage or errors.
		ExitErrHandler: func(*cli.Context, error) {},
	}
}

func globalFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "kubeconfig", EnvVars: []string{"KUBECONFIG"},
			Usage: "kubeconfig file (default: ~/.kube/config, else in-cluster; none: NB/SB only)"},
		&cli.StringFlag{Name: "nb", EnvVars: []string{"KOVN_NB", "OVN_NB_DB"},
			Usage: "OVN NB address(es): ssl:IP:6641, tcp:IP:6641 or unix:PATH, comma-separated for a RAFT cluster"},
		&cli.StringFlag{Name: "sb", EnvVars: []string{"KOVN_SB", "OVN_SB_DB"},
			Usage: "OVN SB address(es): ssl:IP:6642, tcp:IP:6642 or unix:PATH"},
		&cli.StringFlag{Name: "private-key", EnvVars: []string{"KOVN_OVN_PRIVATE_KEY"}, Usage: "for ssl: NB/SB addresses: the client's PEM private key (as ovn-nbctl -p)"},
		&cli.StringFlag{Name: "certificate", EnvVars: []string{"KOVN_OVN_CERTIFICATE"}, Usage: "for ssl: NB/SB addresses: the client's PEM certificate (as ovn-nbctl -c)"},
		&cli.StringFlag{Name: "ca-cert", EnvVars: []string{"KOVN_OVN_CA_CERT"}, Usage: "for ssl: NB/SB addresses: the CA that signed the servers' certificates (as ovn-nbctl -C)"},
		&cli.DurationFlag{Name: "timeout", Value: 10 * time.Second, Usage: "for connecting to each database and for the whole command"},
		&cli.StringFlag{Name: "output", Aliases: []string{"o"}, Value: "text", Usage: "text or json"},
	}
}

// env is what every command connects to, resolved from the flags.
type env struct {
	c       *cli.Context
	out     io.Writer
	json    bool
	timeout time.Duration
}

func newEnv(c *cli.Context) (*env, error) {
	e := &env{c: c, out: c.App.Writer, timeout: c.Duration("timeout")}
	switch c.String("output") {
	case "text":
	case "json":
		e.json = true
	default:
		return nil, cli.Exit("--output must be text or json", 2)
	}
	return e, nil
}

// kube returns an API client, or nil when no configuration exists (the
// commands then work from NB and SB alone).
func (e *env) kube() (kubernetes.Interface, error) {
	cc, ok := clientConfig(e.c.String("kubeconfig"))
	if !ok {
		return nil, nil
	}
	cs, _, err := kube.NewClientset(cc)
	if err != nil {
		return nil, err
	}
	return cs, nil
}

// dynamic returns a client for kovn's own resources (ExternalPorts), or
// nil when no configuration exists, as kube.
func (e *env) dynamic() (dynamic.Interface, error) {
	cc, ok := clientConfig(e.c.String("kubeconfig"))
	if !ok {
		return nil, nil
	}
	return kube.NewDynamic(cc)
}

// clientConfig is the API configuration of kubeconfig, else of
// ~/.kube/config, else in-cluster; false when there is none of them.
// Low QPS: kovnctl makes one-shot reads.
func clientConfig(kubeconfig string) (kube.ClientConfig, bool) {
	if kubeconfig == "" {
		if home, err := os.UserHomeDir(); err == nil {
			if p := filepath.Join(home, ".kube", "config"); fileExists(p) {
				kubeconfig = p
			}
		}
	}
	if kubeconfig == "" && os.Getenv("KUBERNETES_SERVICE_HOST") == "" {
		return kube.ClientConfig{}, false
	}
	return kube.ClientConfig{Kubeconfig: kubeconfig, QPS: 20, Burst: 40, UserAgent: "kovnctl"}, true
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// tlsFiles are the --private-key, --certificate and --ca-cert files.
func (e *env) tlsFiles() ovsdbtls.Files {
	return ovsdbtls.Files{PrivateKey: e.c.String("private-key"), Certificate: e.c.String("certificate"), CACert: e.c.String("ca-cert")}
}

func (e *env) connectNB(ctx context.Context, tables ...ovndb.Table) (client.Client, error) {
	addr := e.c.String("nb")
	if addr == "" {
		return nil, cli.Exit("no NB address: pass --nb or set KOVN_NB (or OVN_NB_DB)", 2)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	tlsCfg, err := e.tlsFiles().Config("NB")
	if err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	return ovndb.NB(ctx, addr, tlsCfg, tables...)
}

func (e *env) connectSB(ctx context.Context, tables ...ovndb.Table) (client.Client, error) {
	addr := e.c.String("sb")
	if addr == "" {
		return nil, cli.Exit("no SB address: pass --sb or set KOVN_SB (or OVN_SB_DB)", 2)
	}
	ctx, cancel := context.WithTimeout(ctx, e.timeout)
	defer cancel()
	tlsCfg, err := e.tlsFiles().Config("SB")
	if err != nil {
		return nil, cli.Exit(err.Error(), 2)
	}
	return ovndb.SB(ctx, addr, tlsCfg, tables...)
}

// printJSON writes v indented.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.out)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // matches are full of && and <=
	return enc.Encode(v)
}
