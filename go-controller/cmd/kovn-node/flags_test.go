package main

import (
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/flagdoc"
)

// TestFlagReference keeps this binary's section of docs/flags.md equal to
// what its flags say; `make generate` rewrites the section.
func TestFlagReference(t *testing.T) {
	flagdoc.Check(t, newApp())
}
