package kovnimage

// dist/images/Containerfile is the image's definition for Docker and its
// kin; this package builds the same image without them. These tests keep
// the two from drifting apart.

import (
	"os"
	"path"
	"path/filepath"
	"reflect"
	"runtime"
	"strings"
	"testing"
)

func checkoutDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..", "..", "..")
}

// instructions returns the Containerfile's instructions, continuation
// lines joined and comments dropped.
func instructions(t *testing.T) [][]string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(checkoutDir(), "dist", "images", "Containerfile"))
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	var cur string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		if strings.HasSuffix(line, `\`) {
			cur += strings.TrimSuffix(line, `\`) + " "
			continue
		}
		if f := strings.Fields(cur + line); len(f) > 0 {
			out = append(out, f)
		}
		cur = ""
	}
	return out
}

func TestContainerfileBase(t *testing.T) {
	// debroot builds minbase bookworm: Debian 12, as debian:12-slim is.
	ins := instructions(t)
	if len(ins) == 0 {
		t.Fatal("no instructions")
	}
	if got := strings.Join(ins[0], " "); got != "FROM debian:12-slim" {
		t.Errorf("first instruction %q: the rootfs recipe in debroot assumes FROM debian:12-slim", got)
	}
}

func TestContainerfilePackages(t *testing.T) {
	var got []string
	for _, in := range instructions(t) {
		if in[0] != "RUN" {
			continue
		}
		for _, cmd := range strings.Split(strings.Join(in[1:], " "), "&&") {
			f := strings.Fields(cmd)
			if len(f) < 2 || f[0] != "apt-get" || f[1] != "install" {
				continue
			}
			for _, a := range f[2:] {
				if !strings.HasPrefix(a, "-") {
					got = append(got, a)
				}
			}
		}
	}
	if !reflect.DeepEqual(got, Packages()) {
		t.Errorf("Containerfile installs %q, Packages() lists %q: change both", got, Packages())
	}
}

func TestContainerfileCopies(t *testing.T) {
	var got []copied
	for _, in := range instructions(t) {
		if in[0] != "COPY" {
			continue
		}
		if len(in) < 3 || strings.HasPrefix(in[1], "--") {
			t.Fatalf("COPY %q: this test reads only plain COPY SRC... DEST", in[1:])
		}
		dst := in[len(in)-1]
		for _, src := range in[1 : len(in)-1] {
			if strings.HasSuffix(dst, "/") {
				got = append(got, copied{src, dst + path.Base(src)})
			} else {
				got = append(got, copied{src, dst})
			}
		}
	}
	if !reflect.DeepEqual(got, copies()) {
		t.Errorf("Containerfile copies %v, copies() lists %v: change both", got, copies())
	}
	for _, c := range copies() {
		// COPY keeps the source's mode; Build sets 0755 on every file.
		st, err := os.Stat(filepath.Join(checkoutDir(), c.src))
		if err == nil && st.Mode().Perm() != 0o755 {
			t.Errorf("%s has mode %o; the image built here gives it 0755", c.src, st.Mode().Perm())
		}
	}
}
