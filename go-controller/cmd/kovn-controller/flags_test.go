package main

import (
	"os"
	"testing"

	"github.com/kovn-io/kovn/go-controller/pkg/flagdoc"
)

// TestFlagReference keeps this binary's section of docs/flags.md equal to
// what its flags say; `make generate` rewrites the section.
func TestFlagReference(t *testing.T) {
	if err := flagdoc.Sync("../../../docs/flags.md", newApp(), os.Getenv(flagdoc.UpdateEnv) == "1"); err != nil {
		t.Fatal(err)
	}
}
