package lab

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/coredns"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/e2eimages"
	"github.com/kovn-io/kovn/go-controller/pkg/lab/k8sbuild"
)

// addonImages builds the images of the add-ons the lab was asked for,
// before the hosts start so every node imports them with the others: the
// upstream e2e images, recorded in l.Images, and CoreDNS's, returned for
// buildImages to pack. Both hold the one CoreDNS binary.
func (l *Lab) addonImages() ([]labImage, error) {
	if !l.ClusterDNS && !l.E2EImages {
		return nil, nil
	}
	coreDNS, err := coredns.EnsureBinary(l.CacheDir, os.Stdout)
	if err != nil {
		return nil, err
	}
	if l.E2EImages {
		if err := l.buildE2EImages(coreDNS); err != nil {
			return nil, err
		}
	}
	if !l.ClusterDNS {
		return nil, nil
	}
	return []labImage{{role: "coredns", repo: "kovn.local/coredns", binary: coreDNS, inside: "/coredns"}}, nil
}

// buildE2EImages builds e2e.test and the upstream images it names, and
// records them under their roles (e2eimages.Role), whose tarballs are
// where imageTarball expects them.
func (l *Lab) buildE2EImages(coreDNS string) error {
	e2eTest, err := k8sbuild.EnsureE2E(l.CacheDir, l.K8sVersion, os.Stdout)
	if err != nil {
		return err
	}
	listed, err := e2eimages.ListImages(e2eTest)
	if err != nil {
		return err
	}
	refs, err := e2eimages.Refs(listed)
	if err != nil {
		return err
	}
	src, err := k8sbuild.SourceDir(l.CacheDir, l.K8sVersion)
	if err != nil {
		return err
	}
	ims, err := e2eimages.Build(e2eimages.Config{
		CacheDir: l.CacheDir, Refs: refs, Agnhost: l.k8sBin("agnhost"),
		AgnhostSource: filepath.Join(src, "test", "images", "agnhost"), CoreDNS: coreDNS,
		Pause: filepath.Join(l.BinDir, "kovn-pause"), Log: os.Stdout,
	})
	if err != nil {
		return err
	}
	for _, im := range ims {
		if im.Tarball != l.imageTarball(im.Role) {
			return fmt.Errorf("image %s is at %s, not where the nodes import it from", im.Ref.Ref, im.Tarball)
		}
		l.Images[im.Role] = im.Ref.Ref
	}
	return nil
}

// deployDNS applies CoreDNS on the cluster DNS IP every kubelet hands its
// pods, and waits until it answers its readiness probe.
func (l *Lab) deployDNS(ctx context.Context) error {
	manifest, err := coredns.Manifests(coredns.Params{Image: l.Images["coredns"], ClusterIP: ClusterDNSIP, Domain: "cluster.local", Replicas: 2})
	if err != nil {
		return err
	}
	path := l.path("addons", "coredns.yaml")
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(path, manifest, 0o644); err != nil {
		return err
	}
	if _, err := run(l.KubectlPath(), "--kubeconfig="+l.KubeconfigPath(), "apply", "-f", path); err != nil {
		return err
	}
	cs, err := l.Client()
	if err != nil {
		return err
	}
	return waitFor("CoreDNS ready", 3*time.Minute, func() error {
		err := deploymentReady(ctx, cs, "kube-system", "coredns")
		if err != nil {
			if why := podProblems(ctx, cs, "kube-system"); why != "" {
				return fmt.Errorf("%w; %s", err, why)
			}
		}
		return err
	})
}
