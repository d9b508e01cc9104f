package config

import (
	"flag"
	"strconv"

	"github.com/urfave/cli/v2"
	"github.com/urfave/cli/v2/altsrc"
	"k8s.io/klog/v2"
)

// logVerbosityFlag is klog's -v under the same name, for both daemons.
func logVerbosityFlag() cli.Flag {
	return altsrc.NewIntFlag(&cli.IntFlag{Name: "v", Usage: "log verbosity: 0 logs failures and state changes; 2 adds each retried sync and each plugged pod; 4 adds every OVSDB transaction"})
}

// SetLogVerbosity hands the verbosity to klog, which keeps it in its own
// package state: klog offers no other way in than its flag set.
func SetLogVerbosity(v int) error {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	return fs.Set("v", strconv.Itoa(v))
}
