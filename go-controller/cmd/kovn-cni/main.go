// Command kovn-cni is the CNI plugin the container runtime runs from
// /opt/cni/bin. It holds no logic of its own: it forwards each request to
// kovn-node over the unix socket named by the network configuration's
// "socketPath" (default /run/kovn/cni.sock) and prints the answer.
package main

import (
	"os"

	"github.com/kovn-io/kovn/go-controller/pkg/cni"
)

// version is set with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(cni.NewPlugin(os.Stdout).Main("CNI plugin kovn-cni " + version))
}
