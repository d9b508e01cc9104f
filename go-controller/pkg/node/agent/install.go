package agent

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"k8s.io/apimachinery/pkg/labels"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/klog/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/config"
	"github.com/kovn-io/kovn/go-controller/pkg/node/ovs"
	"github.com/kovn-io/kovn/go-controller/pkg/node/podif"
)

// conflistName sorts first, so the runtime picks kovn's network.
const conflistName = "10-kovn.conflist"

// conflist is kovn-cni followed by the standard portmap plugin, which
// implements hostPort (the runtime hands it the portMappings capability).
func conflist(socket string) ([]byte, error) {
	return json.MarshalIndent(map[string]any{
		"cniVersion": "1.0.0",
		"name":       "kovn",
		"plugins": []map[string]any{
			{"type": "kovn-cni", "socketPath": socket},
			{"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true},
		},
	}, "", "  ")
}

// installCNI copies the plugin binary and writes the conflist, each
// atomically, so the runtime never sees half a file.
func installCNI(cfg *config.Node) error {
	if err := os.MkdirAll(cfg.CNIBinDir, 0o755); err != nil {
		return err
	}
	if err := copyAtomic(cfg.CNIPlugin, filepath.Join(cfg.CNIBinDir, "kovn-cni"), 0o755); err != nil {
		return fmt.Errorf("install kovn-cni: %w", err)
	}
	if _, err := os.Stat(filepath.Join(cfg.CNIBinDir, "portmap")); err != nil {
		klog.InfoS("portmap CNI plugin missing: hostPort will not work", "dir", cfg.CNIBinDir)
	}
	b, err := conflist(cfg.SocketPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(cfg.CNIConfDir, 0o755); err != nil {
		return err
	}
	return writeAtomic(filepath.Join(cfg.CNIConfDir, conflistName), b, 0o644)
}

func copyAtomic(src, dst string, mode os.FileMode) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	b, err := io.ReadAll(in)
	if err != nil {
		return err
	}
	return writeAtomic(dst, b, mode)
}

func writeAtomic(path string, b []byte, mode os.FileMode) error {
	tmp := path + ".kovn-tmp"
	if err := os.WriteFile(tmp, b, mode); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

// removeStalePorts deletes pod ports (and their veths) whose pod is no
// longer on this node: DEL may have been missed while the agent was down.
func removeStalePorts(ctx context.Context, o *ovs.Client, pods corelisters.PodLister) error {
	ports, err := o.Ports(ctx, "br-int")
	if err != nil {
		return err
	}
	live := map[string]bool{}
	list, err := pods.List(labels.Everything())
	if err != nil {
		return err
	}
	for _, p := range list {
		live[string(p.UID)] = true
	}
	for _, p := range ports {
		if p.ExternalIDs[podKey] == "" || live[p.ExternalIDs["iface-id-ver"]] {
			continue
		}
		klog.InfoS("removing the port of a pod that is gone", "port", p.Name, "pod", p.ExternalIDs[podKey])
		if err := o.DeletePort(ctx, "br-int", p.Name); err != nil {
			return err
		}
		if err := podif.Teardown(p.Name); err != nil {
			return err
		}
	}
	return nil
}
