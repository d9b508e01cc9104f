package ociimage

import (
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"regexp"
	"runtime"
	"strings"
)

// The OCI documents, reduced to the fields this package writes.

const (
	mediaTypeIndex    = "application/vnd.oci.image.index.v1+json"
	mediaTypeManifest = "application/vnd.oci.image.manifest.v1+json"
	mediaTypeConfig   = "application/vnd.oci.image.config.v1+json"
	mediaTypeLayer    = "application/vnd.oci.image.layer.v1.tar+gzip"
	defaultPath       = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	created           = "1970-01-01T00:00:00Z" // fixed for reproducibility
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *platform         `json:"platform,omitempty"`
}

type platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
}

type manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        descriptor   `json:"config"`
	Layers        []descriptor `json:"layers"`
}

type index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Manifests     []descriptor `json:"manifests"`
}

type config struct {
	Created      string `json:"created"`
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Config       struct {
		Env        []string `json:"Env,omitempty"`
		Entrypoint []string `json:"Entrypoint,omitempty"`
		Cmd        []string `json:"Cmd,omitempty"`
		WorkingDir string   `json:"WorkingDir,omitempty"`
	} `json:"config"`
	RootFS struct {
		Type    string   `json:"type"`
		DiffIDs []string `json:"diff_ids"`
	} `json:"rootfs"`
}

const layoutJSON = `{"imageLayoutVersion":"1.0.0"}`

// configJSON lists the base layers' diff_ids below the top layer's.
func configJSON(img Image, topDiffID string) ([]byte, error) {
	var c config
	c.Created, c.Architecture, c.OS = created, arch(img), "linux"
	c.Config.Env = img.Env
	if !hasPath(img.Env) {
		c.Config.Env = append([]string{defaultPath}, img.Env...)
	}
	c.Config.Entrypoint, c.Config.Cmd, c.Config.WorkingDir = img.Entrypoint, img.Cmd, img.WorkingDir
	c.RootFS.Type = "layers"
	for _, l := range img.Base {
		c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, l.DiffID)
	}
	c.RootFS.DiffIDs = append(c.RootFS.DiffIDs, topDiffID)
	return json.Marshal(c)
}

func hasPath(env []string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, "PATH=") {
			return true
		}
	}
	return false
}

func arch(img Image) string {
	if img.Architecture != "" {
		return img.Architecture
	}
	return runtime.GOARCH
}

// checkName validates img.Name and returns its tag. A tag is required
// because kubelet looks images up as name:tag and would not find an
// untagged import.
func checkName(name string) (string, error) {
	const (
		domain    = `(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?`
		component = `[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*`
		tag       = `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`
	)
	m := regexp.MustCompile(`^(` + domain + `)/` + component + `(?:/` + component + `)*:(` + tag + `)$`).FindStringSubmatch(name)
	if m == nil {
		return "", fmt.Errorf("image name %q: want domain/path:tag, e.g. kovn.local/test-server:v1", name)
	}
	if d := m[1]; !strings.ContainsAny(d, ".:") && d != "localhost" {
		return "", fmt.Errorf("image name %q: %q is not a registry domain; containerd would read it as docker.io/%s", name, d, name)
	}
	return m[2], nil
}

func blob(mediaType string, b []byte) descriptor {
	return descriptor{MediaType: mediaType, Digest: fmt.Sprintf("sha256:%x", sha256.Sum256(b)), Size: int64(len(b))}
}

func digestOf(h interface{ Sum([]byte) []byte }) string {
	return fmt.Sprintf("sha256:%x", h.Sum(nil))
}

func blobPath(digest string) string {
	return "blobs/sha256/" + strings.TrimPrefix(digest, "sha256:")
}
