package lab

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
)

// Packages are the Debian 12 packages the lab, the tests and the benchmarks
// run on. It is the one list: `make deps` and `kovn-lab up` both use it.
func Packages() []string {
	return []string{
		"ovn-central", "ovn-host", "openvswitch-switch", // OVN 23.03, OVS 3.1
		"etcd-server", "containerd", "runc", "containernetworking-plugins",
		"iproute2", "iptables", "conntrack", "ethtool", "util-linux", "procps", "psmisc",
		"kmod", "tcpdump", "mmdebstrap", "iputils-ping", "curl",
		"linux-perf", // kovn-bench's CPU profiles (docs/benchmarks.md)
	}
}

// MissingPackages lists the packages that are not installed.
func MissingPackages(pkgs []string) []string {
	var missing []string
	for _, p := range pkgs {
		out, err := exec.Command("dpkg-query", "-W", "-f=${db:Status-Status}", p).Output()
		if err != nil || strings.TrimSpace(string(out)) != "installed" {
			missing = append(missing, p)
		}
	}
	return missing
}

// InstallPackages installs what is missing, and nothing when nothing is.
// Package scripts must not start the machine's own OVS, OVN, etcd or
// containerd services: the lab runs private instances in namespaces, and
// services in the root namespace are exactly what it promises not to add.
// A policy-rc.d that refuses starts is put in place for the install when
// the machine has none.
func InstallPackages(pkgs []string, out io.Writer) error {
	missing := MissingPackages(pkgs)
	if len(missing) == 0 {
		return nil
	}
	fmt.Fprintf(out, "installing %s\n", strings.Join(missing, " "))
	const policy = "/usr/sbin/policy-rc.d"
	if _, err := os.Stat(policy); os.IsNotExist(err) {
		if err := os.WriteFile(policy, []byte("#!/bin/sh\n# kovn-lab: no service starts during package installs\nexit 101\n"), 0o755); err != nil {
			return err
		}
		defer os.Remove(policy)
	}
	env := append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	update := exec.Command("apt-get", "update", "-q")
	update.Env, update.Stdout, update.Stderr = env, out, out
	if err := update.Run(); err != nil {
		return fmt.Errorf("apt-get update: %w", err)
	}
	install := exec.Command("apt-get", append([]string{"install", "-y", "-q", "--no-install-recommends"}, missing...)...)
	install.Env, install.Stdout, install.Stderr = env, out, out
	if err := install.Run(); err != nil {
		return fmt.Errorf("apt-get install: %w", err)
	}
	if still := MissingPackages(missing); len(still) > 0 {
		return fmt.Errorf("still missing after install: %s", strings.Join(still, " "))
	}
	return nil
}
