package lab

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/ociimage"
)

// labImage is one image the lab builds from a single static binary.
type labImage struct {
	role   string // key in State.Images
	repo   string
	binary string // path of the binary to pack
	inside string // its path in the image
	args   []string
}

func (l *Lab) labImages() []labImage {
	return []labImage{
		{role: "pause", repo: "kovn.local/pause", binary: filepath.Join(l.BinDir, "kovn-pause"), inside: "/pause"},
		{role: "test-server", repo: "kovn.local/test-server", binary: filepath.Join(l.BinDir, "kovn-test-server"), inside: "/test-server"},
		{role: "agnhost", repo: "kovn.local/agnhost", binary: l.k8sBin("agnhost"), inside: "/agnhost"},
	}
}

// imageTarball is where an image's OCI tarball is cached.
func (l *Lab) imageTarball(role string) string {
	return filepath.Join(l.CacheDir, "images", role+".tar")
}

// buildImages writes each image as an OCI tarball, tagged by the content
// of its binary so a rebuilt binary gets a new tag (kubelet never re-pulls a
// tag it has), and records the references in the state.
func (l *Lab) buildImages() error {
	if err := os.MkdirAll(filepath.Join(l.CacheDir, "images"), 0o755); err != nil {
		return err
	}
	if l.FromManifests() {
		if err := l.buildKovnImage(); err != nil {
			return err
		}
	}
	addons, err := l.addonImages()
	if err != nil {
		return err
	}
	for _, im := range append(l.labImages(), addons...) {
		sum, err := fileSHA256(im.binary)
		if err != nil {
			return fmt.Errorf("image %s: %w (run make build first)", im.role, err)
		}
		ref := im.repo + ":" + sum[:12]
		l.Images[im.role] = ref
		stamp := l.imageTarball(im.role) + ".ref"
		if b, err := os.ReadFile(stamp); err == nil && string(b) == ref {
			if _, err := os.Stat(l.imageTarball(im.role)); err == nil {
				continue
			}
		}
		err = ociimage.WriteFile(l.imageTarball(im.role), ociimage.Image{
			Name:       ref,
			Files:      []ociimage.File{{Path: im.inside, Mode: 0o755, SourcePath: im.binary}},
			Entrypoint: []string{im.inside},
			Cmd:        im.args,
		})
		if err != nil {
			return fmt.Errorf("image %s: %w", im.role, err)
		}
		if err := os.WriteFile(stamp, []byte(ref), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func fileSHA256(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
