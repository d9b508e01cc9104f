package cni

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
)

// buildPlugin builds the real kovn-cni binary, static as it ships.
func buildPlugin(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go tool not found; cannot build kovn-cni")
	}
	bin := filepath.Join(t.TempDir(), "kovn-cni")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/kovn-io/kovn/go-controller/cmd/kovn-cni")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build kovn-cni: %v\n%s", err, out)
	}
	return bin
}

type invocation struct {
	command, containerID, conf string
}

// run executes the plugin the way a runtime does and returns stdout and
// the exit code.
func run(t *testing.T, bin string, inv invocation) ([]byte, int) {
	t.Helper()
	cmd := exec.Command(bin)
	cmd.Env = []string{
		"CNI_COMMAND=" + inv.command,
		"CNI_CONTAINERID=" + inv.containerID,
		"CNI_NETNS=/var/run/netns/test",
		"CNI_IFNAME=eth0",
		"CNI_PATH=/opt/cni/bin",
		"CNI_ARGS=IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0;K8S_POD_UID=uid-1",
	}
	cmd.Stdin = strings.NewReader(inv.conf)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var exitErr *exec.ExitError
	if err != nil && !errors.As(err, &exitErr) {
		t.Fatalf("run kovn-cni: %v", err)
	}
	return stdout.Bytes(), cmd.ProcessState.ExitCode()
}

// wantError checks the spec's error object and a non-zero exit.
func wantError(t *testing.T, out []byte, exit int, code uint, msgPart string) {
	t.Helper()
	var e struct {
		CNIVersion string `json:"cniVersion"`
		Code       uint   `json:"code"`
		Msg        string `json:"msg"`
	}
	if err := json.Unmarshal(out, &e); err != nil {
		t.Fatalf("error output is not JSON: %v: %s", err, out)
	}
	if exit == 0 || e.CNIVersion == "" || e.Code != code || !strings.Contains(e.Msg, msgPart) {
		t.Errorf("exit %d, error %+v; want non-zero exit, code %d, msg containing %q", exit, e, code, msgPart)
	}
}

func TestExecPlugin(t *testing.T) {
	bin := buildPlugin(t)
	t.Run("static", func(t *testing.T) {
		f, err := elf.Open(bin)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = f.Close() }()
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP {
				t.Error("kovn-cni is dynamically linked")
			}
		}
	})
	t.Run("VERSION", func(t *testing.T) {
		out, exit := run(t, bin, invocation{command: "VERSION"})
		var v struct {
			CNIVersion        string   `json:"cniVersion"`
			SupportedVersions []string `json:"supportedVersions"`
		}
		if err := json.Unmarshal(out, &v); err != nil || exit != 0 {
			t.Fatalf("exit %d, %v: %s", exit, err, out)
		}
		if strings.Join(v.SupportedVersions, ",") != "1.0.0,1.1.0" {
			t.Errorf("supportedVersions = %v", v.SupportedVersions)
		}
	})
	t.Run("agent down", func(t *testing.T) { testExecAgentDown(t, bin) })
	t.Run("agent up", func(t *testing.T) { testExecAgentUp(t, bin) })
	t.Run("timeout", func(t *testing.T) {
		release := make(chan struct{})
		defer close(release)
		h := &fakeHandler{add: func(context.Context, *Request) (*types100.Result, error) {
			<-release
			return nil, nil
		}}
		sock, _ := startServer(t, h, ServerOptions{AddTimeout: 300 * time.Millisecond})
		out, exit := run(t, bin, invocation{"ADD", "c1", fmt.Sprintf(testConf, sock)})
		wantError(t, out, exit, types.ErrTryAgainLater, "timed out after 300ms")
	})
}

func testExecAgentDown(t *testing.T, bin string) {
	sock := filepath.Join(shortTempDir(t), "cni.sock")
	conf := fmt.Sprintf(testConf, sock)
	notRunning := fmt.Sprintf("kovn-node is not running on this node (socket %s not found)", sock)
	out, exit := run(t, bin, invocation{"ADD", "c1", conf})
	wantError(t, out, exit, types.ErrTryAgainLater, notRunning)
	// DEL fails too, so the runtime retries it once kovn-node is back.
	out, exit = run(t, bin, invocation{"DEL", "c1", conf})
	wantError(t, out, exit, types.ErrTryAgainLater, notRunning)
	out, exit = run(t, bin, invocation{"STATUS", "", conf})
	wantError(t, out, exit, types.ErrPluginNotAvailable, notRunning)
}

func testExecAgentUp(t *testing.T, bin string) {
	h := &fakeGCHandler{}
	h.add = func(_ context.Context, req *Request) (*types100.Result, error) {
		if req.ContainerID == "bad" {
			return nil, types.NewError(types.ErrInvalidNetworkConfig, "pod ns1/web-0 has no kovn.io/pod-network annotation", "")
		}
		return testResult("10.128.1.5"), nil
	}
	gone := map[string]bool{}
	h.del = func(_ context.Context, req *Request) error {
		h.mu.Lock()
		defer h.mu.Unlock()
		if gone[req.ContainerID] {
			return types.NewError(types.ErrUnknownContainer, "no such pod", "")
		}
		gone[req.ContainerID] = true
		return nil
	}
	sock, _ := startServer(t, h, ServerOptions{})
	conf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"kovn","type":"kovn-cni","socketPath":%q,
		"capabilities":{"portMappings":true},
		"runtimeConfig":{"portMappings":[{"hostPort":8080,"containerPort":80,"protocol":"tcp"}]}}`, sock)

	out, exit := run(t, bin, invocation{"ADD", "c1", conf})
	if exit != 0 {
		t.Fatalf("ADD exit %d: %s", exit, out)
	}
	res := &types100.Result{}
	if err := json.Unmarshal(out, res); err != nil {
		t.Fatalf("ADD output: %v: %s", err, out)
	}
	if res.CNIVersion != "1.1.0" || len(res.Interfaces) != 2 || res.Interfaces[1].Name != "eth0" ||
		res.Interfaces[1].Sandbox != "/var/run/netns/test" || len(res.IPs) != 1 ||
		res.IPs[0].Address.String() != "10.128.1.5/24" || *res.IPs[0].Interface != 1 ||
		res.IPs[0].Gateway.String() != "10.128.1.1" || len(res.Routes) != 1 ||
		res.Routes[0].Dst.String() != "0.0.0.0/0" {
		t.Errorf("ADD result = %s", out)
	}
	req := h.requests()[0]
	if req.Command != CommandAdd || req.PodNamespace != "ns1" || req.PodName != "web-0" || req.PodUID != "uid-1" ||
		req.Netns != "/var/run/netns/test" || req.IfName != "eth0" || req.ContainerID != "c1" ||
		len(req.NetConf.RuntimeConfig.PortMappings) != 1 || !strings.Contains(string(req.Config), `"hostPort":8080`) {
		t.Errorf("handler saw %+v (conf %+v)", req, req.NetConf)
	}

	out, exit = run(t, bin, invocation{"ADD", "bad", conf})
	wantError(t, out, exit, types.ErrInvalidNetworkConfig, "no kovn.io/pod-network annotation")

	// CHECK carries the prevResult the runtime cached from ADD.
	h.check = func(_ context.Context, req *Request) error {
		prev, err := types100.GetResult(req.NetConf.PrevResult)
		if err != nil || len(prev.IPs) != 1 || prev.IPs[0].Address.String() != "10.128.1.5/24" {
			return fmt.Errorf("prevResult %v (%v)", req.NetConf.PrevResult, err)
		}
		return nil
	}
	checkConf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"kovn","type":"kovn-cni","socketPath":%q,"prevResult":%s}`, sock, addResult(t, bin, conf))
	if out, exit := run(t, bin, invocation{"CHECK", "c1", checkConf}); exit != 0 {
		t.Errorf("CHECK exit %d: %s", exit, out)
	}

	// DEL twice: the second finds nothing and still succeeds.
	for i := range 2 {
		if out, exit := run(t, bin, invocation{"DEL", "c1", conf}); exit != 0 || len(out) != 0 {
			t.Errorf("DEL #%d exit %d: %s", i+1, exit, out)
		}
	}
	if out, exit := run(t, bin, invocation{"STATUS", "", conf}); exit != 0 {
		t.Errorf("STATUS exit %d: %s", exit, out)
	}
	gcConf := fmt.Sprintf(`{"cniVersion":"1.1.0","name":"kovn","type":"kovn-cni","socketPath":%q,
		"cni.dev/valid-attachments":[{"containerID":"c7","ifname":"eth0"}]}`, sock)
	if out, exit := run(t, bin, invocation{"GC", "", gcConf}); exit != 0 {
		t.Errorf("GC exit %d: %s", exit, out)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.gc) != 1 || h.gc[0].ContainerID != "c7" {
		t.Errorf("GC saw %+v", h.gc)
	}
}

// addResult runs a successful ADD and returns its result, as a runtime caches it.
func addResult(t *testing.T, bin, conf string) string {
	t.Helper()
	out, exit := run(t, bin, invocation{"ADD", "c2", conf})
	if exit != 0 {
		t.Fatalf("ADD exit %d: %s", exit, out)
	}
	return string(out)
}
