package cni

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/containernetworking/cni/pkg/skel"
	"github.com/containernetworking/cni/pkg/types"
	types100 "github.com/containernetworking/cni/pkg/types/100"
	"github.com/prometheus/client_golang/prometheus"
)

// fakeHandler answers ADD with an address derived from the pod and
// records every request; fields override single commands.
type fakeHandler struct {
	add    func(ctx context.Context, req *Request) (*types100.Result, error)
	del    func(ctx context.Context, req *Request) error
	check  func(ctx context.Context, req *Request) error
	status func(ctx context.Context) error

	mu   sync.Mutex
	reqs []*Request
}

func (f *fakeHandler) record(req *Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
}

func (f *fakeHandler) requests() []*Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*Request(nil), f.reqs...)
}

func (f *fakeHandler) Add(ctx context.Context, req *Request) (*types100.Result, error) {
	f.record(req)
	if f.add != nil {
		return f.add(ctx, req)
	}
	return testResult("10.128.1.5"), nil
}

func (f *fakeHandler) Del(ctx context.Context, req *Request) error {
	f.record(req)
	if f.del != nil {
		return f.del(ctx, req)
	}
	return nil
}

func (f *fakeHandler) Check(ctx context.Context, req *Request) error {
	f.record(req)
	if f.check != nil {
		return f.check(ctx, req)
	}
	return nil
}

func (f *fakeHandler) Status(ctx context.Context) error {
	if f.status != nil {
		return f.status(ctx)
	}
	return nil
}

// fakeGCHandler also implements GCHandler.
type fakeGCHandler struct {
	fakeHandler
	gc []types.GCAttachment
}

func (f *fakeGCHandler) GC(_ context.Context, req *Request) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gc = append(f.gc, req.NetConf.ValidAttachments...)
	return nil
}

func testResult(ip string) *types100.Result {
	addr := &net.IPNet{IP: net.ParseIP(ip).To4(), Mask: net.CIDRMask(24, 32)}
	_, all, _ := net.ParseCIDR("0.0.0.0/0")
	return &types100.Result{
		CNIVersion: types100.ImplementedSpecVersion,
		Interfaces: []*types100.Interface{
			{Name: "kovn-abc123", Mac: "ee:ee:ee:ee:ee:ee"},
			{Name: "eth0", Mac: "0a:58:0a:80:01:05", Sandbox: "/var/run/netns/test"},
		},
		IPs:    []*types100.IPConfig{{Interface: types100.Int(1), Address: *addr, Gateway: net.ParseIP("10.128.1.1")}},
		Routes: []*types.Route{{Dst: *all, GW: net.ParseIP("10.128.1.1")}},
	}
}

// shortTempDir keeps socket paths under the 108-byte sun_path limit.
func shortTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kovncni")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// startServer serves h on a fresh socket until the test ends.
func startServer(t *testing.T, h Handler, opts ServerOptions) (string, *prometheus.Registry) {
	t.Helper()
	sock := filepath.Join(shortTempDir(t), "run", "cni.sock")
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	s := NewServer(sock, h, opts)
	if err := s.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Serve: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("Serve did not return after cancel")
		}
	})
	return sock, reg
}

const testConf = `{"cniVersion":"1.1.0","name":"kovn","type":"kovn-cni","socketPath":%q}`

func testArgs(containerID, conf string) *skel.CmdArgs {
	return &skel.CmdArgs{
		ContainerID: containerID,
		Netns:       "/var/run/netns/test",
		IfName:      "eth0",
		Args:        "IgnoreUnknown=1;K8S_POD_NAMESPACE=ns1;K8S_POD_NAME=web-0;K8S_POD_INFRA_CONTAINER_ID=" + containerID + ";K8S_POD_UID=uid-1",
		Path:        "/opt/cni/bin",
		StdinData:   []byte(conf),
	}
}

// counterValue reads kovn_cni_requests_total{command,result}.
func counterValue(t *testing.T, reg *prometheus.Registry, command, result string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "kovn_cni_requests_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["command"] == command && labels["result"] == result {
				return m.GetCounter().GetValue()
			}
		}
	}
	return 0
}
