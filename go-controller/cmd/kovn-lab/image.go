package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"github.com/kovn-io/kovn/go-controller/pkg/lab/kovnimage"
)

func imageCommand() *cli.Command {
	return &cli.Command{
		Name:  "image",
		Usage: "build dist/images/Containerfile's image without Docker, as an OCI tarball in the cache dir; prints its reference and path",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "checkout", Usage: "the kovn checkout, after make build (default: two directories above kovn-lab)"},
			&cli.StringSliceFlag{Name: "mirror", Usage: "mmdebstrap MIRROR, repeatable: a URL, a sources.list line or file (default: deb.debian.org with bookworm-updates and bookworm-security)"},
		},
		Action: func(c *cli.Context) error {
			checkout := c.String("checkout")
			if checkout == "" {
				self, err := os.Executable()
				if err != nil {
					return err
				}
				checkout = filepath.Join(filepath.Dir(self), "..", "..")
			}
			checkout, err := filepath.Abs(checkout)
			if err != nil {
				return err
			}
			res, err := kovnimage.Build(kovnimage.Config{
				CheckoutDir: checkout, CacheDir: c.String("cache-dir"), Mirrors: c.StringSlice("mirror"), Log: os.Stderr,
			})
			if err == nil {
				fmt.Printf("%s %s\n", res.Ref, res.Tarball)
			}
			return err
		},
	}
}
